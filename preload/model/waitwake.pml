/*
 * waitwake.pml -- the wait/notify protocol of ONE ring direction of a
 * pipedevice connection slot (struct pd_dir_ctrl), with the byte-exact
 * handover from kernel TCP and end of stream, checked with spin.
 * See README.md in this directory.
 *
 * It follows preload/ring.c statement by statement:
 *   consumer  = pd_conn_recv_msg: tcp_recv_once, ring_recv_once, wait_rx, rx_ready
 *   epoller   = a second reader-side waiter of the readiness kind: epoll.c's
 *               ep_wait on one ring registration (pd_conn_arm, the re-check
 *               through pd_conn_ring_events/reg_ring_events, epoll_wait on
 *               the doorbell registered EPOLLET, pd_conn_disarm)
 *   producer  = pd_conn_send_msg: tx_use_ring (the switch), tcp_send,
 *               ring_send, wait_tx, tx_ready; then close / shutdown / death
 *   network   = the kernel delivering TCP bytes, then the FIN
 *   killer    = may kill the producer before any of its statements
 *   watchdog  = when nothing can move, asserts the run is complete
 * One item stands for a byte.  K items are sent in all, a prefix (0..K) by TCP
 * before the switch, the rest through a ring of N slots, in chunks of any size
 * the space allows; the consumer reads chunks of any size.  Every Promela
 * statement is atomic and interleavings are sequentially consistent: the
 * shim's full fences (pd_fence_full) are what make the C behave like this at
 * the points marked FENCE.  The BROKEN_*_NO_FENCE variants model a missing
 * fence as the store->load reordering it would permit.
 *
 * The armed words are COUNTS of the side's threads asleep or about to sleep:
 * a waiter adds 1, FENCE, re-checks (removing itself if ready), sleeps, and
 * removes itself when it wakes; a waker, after its publish and FENCE, writes
 * the doorbell when the count is non-zero and leaves the count alone.
 *
 * Shared memory (src/datapath/layout.ts, struct dir_ctrl):
 *   head, tail       free-running counters, here modulo MODC; only their
 *                    difference is used, checked against N like the C does
 *   tx_tcp_bytes     bytes the producer sent by TCP before switching
 *   switched         set (release) after tx_tcp_bytes
 *   wr_closed        set (release) after the last head publish
 *   reader_armed     count: consumer + epoller, armed for data (0..2)
 *   writer_armed     count: producer, armed for space (0..1)
 * Kernel objects:
 *   tcp_sent, tcp_arr, rx_tcp   TCP bytes sent, arrived, received
 *   fin_sent, fin               close()/shutdown()/death; FIN arrived
 *   doorbell_rx, doorbell_tx    eventfds: a write adds 1, a read takes the
 *                               whole count; only zero/non-zero is ever
 *                               observed (poll, epoll), so a bit stands for it.
 *                               Nobody reads them (only broken variants do)
 *   ep_edge                     the epoller's EPOLLET registration of
 *                               doorbell_rx is pending: set by every write
 *                               of the eventfd, cleared when it wakes
 *   ep_sock_edge                its registration of the socket: set when
 *                               the FIN arrives
 *   c_edge, c_sock_edge         the consumer's own EPOLLET registrations
 *                               (ring.c's per-thread waiting set) of
 *                               doorbell_rx and of the socket: set by every
 *                               doorbell write / TCP arrival / the FIN
 *   p_edge                      the producer's registration of doorbell_tx
 *   The kernel's epoll_wait re-polls a file when it collects its pending
 *   EPOLLET edge and drops the event if the file is not ready then: an
 *   eventfd read to 0 is not.  That drop is modelled where a variant reads
 *   a doorbell (DRAINS); otherwise no count ever returns to 0.
 *
 * Switches (spin -D...):
 *   expected to verify:
 *     (none)                 the protocol as preload/ring.c implements it,
 *                            with the epoller
 *     NO_EPOLLER             one blocking waiter per side only
 *     NO_READER_STOP         the consumer never stops reading
 *     POLL_KIND              the epoller clears its pending edge before
 *                            arming (poll.c's priv_drain before pd_conn_arm)
 *     NO_SWITCH_DOORBELL     no wake_reader after setting switched
 *     NO_SPIN                PD_SPIN_US=0: no bounded spin before arming
 *   broken, expected to FAIL:
 *     BROKEN_RX_NO_RECHECK        consumer arms and sleeps, no re-check
 *     BROKEN_RX_NO_FENCE          consumer's re-check loads overtake its
 *                                 armed store (check, arm, sleep)
 *     BROKEN_TX_NO_RECHECK        producer arms and sleeps, no re-check
 *     BROKEN_EP_NO_RECHECK        epoller arms and sleeps, no re-check
 *     BROKEN_TX_WAKE_NO_FENCE     wake_reader checks reader_armed before
 *                                 its fence (before the head store is visible)
 *     BROKEN_RX_WAKE_NO_FENCE     wake_writer checks writer_armed before
 *                                 its fence (before the tail store is visible)
 *     BROKEN_EP_DRAINS            the epoller reads (drains) the doorbell
 *                                 when it wakes
 *     BROKEN_WAIT_DRAINS          ring.c before issue 3's fix: the blocking
 *                                 waiters poll() the doorbell (and the
 *                                 socket) level-triggered and drain the
 *                                 doorbell when poll reported it
 *     BROKEN_SOCK_EDGE_FORGOTTEN  the socket's edge is forgotten when the
 *                                 call returns ring bytes first (rx_kcheck
 *                                 not kept across calls)
 *     BROKEN_FLAG_ARMED           the old protocol: armed is a flag, a waiter
 *                                 stores 1 and 0, the waker claims it with
 *                                 an exchange to 0
 *     BROKEN_PRESWITCH_NO_ARM     before the ring, the consumer sleeps on
 *                                 poll(socket, doorbell) without arming
 *     BROKEN_RX_POLL_DOORBELL_ONLY  the consumer's poll leaves out the socket
 *     BROKEN_HANDOVER_ORDER       switched published before tx_tcp_bytes
 *     BROKEN_EOF_NO_RECHECK       ring EOF (wr_closed or FIN) returned
 *                                 without re-checking head
 *     BROKEN_FIN_NO_SWITCH_RECHECK  pre-switch FIN returned as EOF without
 *                                 re-loading switched
 *   findings in the C as written, expected to FAIL (README.md):
 *     EP_SPLIT_LOADS              the epoller loads head, then tail, as
 *                                 pd_conn_ring_events does; asserts the
 *                                 "corrupt indices" branch never fires on
 *                                 a healthy connection
 * Sizes: -DN=<ring slots> (default 2), -DK=<items> (default 5).
 */

#ifndef N
#define N 2
#endif
#ifndef K
#define K 5
#endif
#define MODC (2 * N)                       /* counters wrap here (u64 in C) */
#define DIFF(a, b) (((a) + MODC - (b)) % MODC)
#define MIN(a, b) ((a) < (b) -> (a) : (b))

#ifdef NO_EPOLLER
#define NO_READER_STOP          /* it stops only to leave the epoller news */
#endif
#if defined(BROKEN_EP_DRAINS) || defined(BROKEN_WAIT_DRAINS)
#define DRAINS                  /* a doorbell's count can return to 0 */
#endif

#ifdef BROKEN_FLAG_ARMED
#define ARM(w)    w = 1
#define DISARM(w) w = 0
#else
#define ARM(w)    w++                      /* arm_add(w, 1); the FENCE follows */
#define DISARM(w) w--                      /* arm_add(w, -1) */
#endif

/* ---- struct pd_dir_ctrl (shared memory) ---- */
byte head;                  /* producer line */
byte tx_tcp_bytes;
bit  switched;
bit  wr_closed;
byte tail;                  /* consumer line */
byte reader_armed;          /* wake line: counts */
byte writer_armed;
byte ring[N];               /* ring slots: item numbers 1..K */

/* ---- kernel objects ---- */
byte tcp_sent;              /* items the producer send()-ed by TCP */
byte tcp_arr;               /* of those, arrived in the receive queue */
byte rx_tcp;                /* items the consumer received from TCP */
bit  fin_sent;              /* the producer's socket was closed / shut down */
bit  fin;                   /* the FIN arrived (after every TCP byte) */
bit  doorbell_rx;           /* consumer's eventfd count != 0 */
bit  doorbell_tx;           /* producer's eventfd count != 0 */
bit  ep_edge;               /* the epoller's edge on doorbell_rx is pending */
bit  ep_sock_edge;          /* its edge on the socket (the FIN) is pending */
bit  c_edge;                /* the consumer's own EPOLLET edge on doorbell_rx */
bit  c_sock_edge;           /* its edge on the socket (TCP bytes, the FIN) */
bit  p_edge;                /* the producer's own EPOLLET edge on doorbell_tx */

/* ---- the epoller's edge-triggered state (struct pd_epreg) ---- */
bit  ep_cur;                /* EPOLLIN reported for the current head: et_head
                             * == head and et_last & EPOLLIN; every head
                             * store clears it (the stored head is new) */
bit  ep_hup;                /* et_last & EPOLLRDHUP */
bit  ep_fin;                /* the socket's FIN (EPOLLRDHUP) was reported */

/* ---- observation only ---- */
byte got;                   /* items the consumer delivered, in order */
bit  c_eof;                 /* consumer returned EOF */
bit  c_stop;                /* the application stopped calling recv */
bit  pdone;                 /* producer has sent all K items */
byte published;             /* items made visible: TCP sends + head stores */
bit  dead;                  /* the producer process was killed */

/* write(efd, 1): the count becomes non-zero; every write is a new edge
 * for an EPOLLET registration */
inline ring_rx() {
  atomic { doorbell_rx = 1; ep_edge = 1; c_edge = 1 }
}
inline ring_tx() {
  atomic { doorbell_tx = 1; p_edge = 1 }
}

/* wake_reader / wake_writer after the FENCE:
 *   if (load_relaxed(armed)) write(doorbell)
 * BROKEN_FLAG_ARMED: if (load(armed) && xchg(armed, 0)) write(doorbell) */
#ifdef BROKEN_FLAG_ARMED
inline wake_reader() {
  if
  :: reader_armed ->
     atomic { old = reader_armed; reader_armed = 0 };
     if
     :: old -> ring_rx()
     :: else -> skip
     fi
  :: else -> skip
  fi
}
inline wake_writer() {
  if
  :: writer_armed ->
     atomic { old = writer_armed; writer_armed = 0 };
     if
     :: old -> ring_tx()
     :: else -> skip
     fi
  :: else -> skip
  fi
}
#else
inline wake_reader() {
  if
  :: reader_armed > 0 -> ring_rx()
  :: else -> skip
  fi
}
inline wake_writer() {
  if
  :: writer_armed > 0 -> ring_tx()
  :: else -> skip
  fi
}
#endif

/* ======================= consumer: the receiver ======================= */

/* rx_ready: news for the reader.  Before the ring: the switch itself (the
 * TCP bytes are the socket's business, which the poll covers); on the ring:
 * data or wr_closed. */
inline rx_ready() {
  if
  :: !rx_ring ->
     if
     :: !sw_seen -> rdy = switched
     :: else -> rdy = 0
     fi
  :: else ->
     h = head;
     if
     :: h != t -> rdy = 1
     :: else -> rdy = wr_closed
     fi
  fi
}

/* The recv call returned bytes to the application, which may never call
 * recv again (it has what it wanted, or reads with epoll from now on). */
#ifdef NO_READER_STOP
#define RETURNED goto next
#else
#define RETURNED \
  if \
  :: goto next \
  :: c_stop = 1; goto stopped \
  fi
#endif

active proctype consumer()
{
  byte t = 0;               /* rx_tail, private */
  byte h;                   /* head as loaded */
  byte limit, n, k;
  bit  rx_ring = 0;         /* peer switched and its TCP bytes are all read */
  bit  sw_seen = 0;         /* rx_sw_seen */
  bit  sw;
  bit  sock_readable = 0;   /* rx_kcheck: the socket had an edge not looked at */
  bit  rx_fin = 0;          /* the FIN was seen on the ring path (sticky) */
  bit  check_kernel;
  bit  rdy, ev_db, ev_sock, old;

  do
  :: if
     :: !rx_ring ->
        /* ---- tcp_recv_once ---- */
        sw = switched;                        /* acquire */
        if
        :: sw ->
           sw_seen = 1;
           limit = tx_tcp_bytes;
           assert(limit >= rx_tcp);           /* C: conn_reset */
           if
           :: limit == rx_tcp -> rx_ring = 1; goto next   /* on to the ring */
           :: else -> skip
           fi
        :: else -> limit = K
        fi;
        /* recvmsg(MSG_DONTWAIT), at most limit - rx_tcp items */
        if
        :: tcp_arr > rx_tcp && rx_tcp < limit ->
           atomic {
             n = MIN(tcp_arr, limit) - rx_tcp;
             k = 1;
             do                               /* the app's buffer takes 1..n */
             :: k < n -> k++
             :: break
             od;
             assert(rx_tcp == got);           /* TCP items come first, in order */
             rx_tcp = rx_tcp + k;
             got = got + k
           };
           RETURNED                           /* r > 0: back to the app */
        :: tcp_arr == rx_tcp && fin ->        /* recv returned 0 */
           assert(!sw);                       /* FIN follows every TCP byte */
#ifndef BROKEN_FIN_NO_SWITCH_RECHECK
           if
           :: switched -> goto wait           /* a switch we had not seen: */
                                              /* -EAGAIN, wait_rx sees it   */
           :: else -> skip
           fi;
#endif
           goto at_eof
        :: else -> goto wait                  /* -EAGAIN */
        fi
     :: else ->
        /* ---- ring_recv_once(check_kernel = rx_kcheck) ---- */
        check_kernel = sock_readable;
#ifdef BROKEN_SOCK_EDGE_FORGOTTEN
        sock_readable = 0;
#endif
        h = head;                             /* acquire */
        n = DIFF(h, t);
        assert(n <= N);                       /* C: conn_reset */
        if
        :: n > 0 ->
           atomic {                           /* copy out 1..n items */
             k = 0;
             do
             :: k < n ->
                assert(ring[t % N] == got + 1);   /* in order, exactly once */
                got++;
                t = (t + 1) % MODC;
                k++
             :: k > 0 -> break
             od
           };
#ifdef BROKEN_RX_WAKE_NO_FENCE
           if                                 /* writer_armed loaded first */
           :: writer_armed > 0 -> tail = t; ring_tx()
           :: else -> tail = t
           fi;
#else
           tail = t;                          /* release; FENCE */
           wake_writer();
#endif
           RETURNED
        :: else -> skip
        fi;
        if
        :: wr_closed ->
#ifndef BROKEN_EOF_NO_RECHECK
           if
           :: head != t -> goto next          /* raced: go again */
           :: else -> skip
           fi;
#endif
           goto at_eof
        :: else -> skip
        fi;
        if
        :: rx_fin ->                          /* the FIN seen by an earlier */
#ifndef BROKEN_EOF_NO_RECHECK                 /* look: EOF for good         */
           if
           :: head != t -> goto next
           :: else -> skip
           fi;
#endif
           goto at_eof
        :: else -> skip
        fi;
        if
        :: !check_kernel -> goto wait
        :: else -> skip
        fi;
        sock_readable = 0;                    /* rx_kcheck = false: looked at */
        /* recv(MSG_PEEK | MSG_DONTWAIT) on the kernel socket */
        assert(tcp_arr == rx_tcp);            /* C: reset if TCP after the switch */
        if
        :: fin ->
           rx_fin = 1;
#ifndef BROKEN_EOF_NO_RECHECK
           if
           :: head != t -> goto next
           :: else -> skip
           fi;
#endif
           goto at_eof
        :: else -> goto wait                  /* -EAGAIN */
        fi
     fi;

wait:
     /* ---- wait_rx ---- */
#ifndef NO_SPIN
     if
     :: rx_ready();                           /* the bounded spin */
        if
        :: rdy -> goto next
        :: else -> skip
        fi
     :: skip                                  /* spin off or expired */
     fi;
#endif
#ifdef BROKEN_PRESWITCH_NO_ARM
     if
     :: !rx_ring ->                           /* sleep unarmed: no disarm */
end_poll_unarmed:
        atomic {
          c_edge || c_sock_edge ->
          ev_sock = c_sock_edge;
          c_edge = 0;
          c_sock_edge = 0
        };
        goto woke
     :: else -> skip
     fi;
#endif
#if defined(BROKEN_RX_NO_FENCE)
     rx_ready();                              /* the loads overtake the store */
     ARM(reader_armed);
#elif defined(BROKEN_RX_NO_RECHECK)
     ARM(reader_armed);
     rdy = 0;
#else
     ARM(reader_armed);                       /* FENCE */
     rx_ready();                              /* re-check */
#endif
     if
     :: rdy ->
        DISARM(reader_armed);
        goto next
     :: else -> skip
     fi;
#if defined(BROKEN_WAIT_DRAINS)
end_poll:                                     /* poll(socket, doorbell_rx), */
     atomic {                                 /* both level-triggered        */
       (doorbell_rx || tcp_arr > rx_tcp || fin) ->
       ev_db = doorbell_rx;
       ev_sock = (tcp_arr > rx_tcp || fin)
     };
#elif defined(BROKEN_RX_POLL_DOORBELL_ONLY)
end_poll:                                     /* the set without the socket */
     atomic { c_edge -> c_edge = 0; c_sock_edge = 0 };
#else
end_poll:                                     /* epoll_wait on the thread's  */
     do                                       /* set: the doorbell and the   */
     :: atomic {                              /* socket, EPOLLET; it collects */
          (c_edge && doorbell_rx) || c_sock_edge ->   /* every pending edge */
          ev_sock = c_sock_edge;
          c_edge = 0;
          c_sock_edge = 0;
          break
        }
#ifdef DRAINS
     :: atomic {                              /* count 0 at collection: the */
          c_edge && !doorbell_rx && !c_sock_edge ->   /* edge is dropped and */
          c_edge = 0                          /* it sleeps on              */
        }
#endif
     od;
#endif
     DISARM(reader_armed);
woke:
#ifdef BROKEN_WAIT_DRAINS
     if
     :: ev_db -> doorbell_rx = 0              /* doorbell_drain: takes it all */
     :: else -> skip
     fi;
#endif
     if
     :: ev_sock -> sock_readable = 1          /* rx_kcheck: kept until looked at */
     :: else -> skip
     fi;
     ev_db = 0;
     ev_sock = 0;
next: skip
  od;

at_eof:
  c_eof = 1;
  assert(got == published && (pdone || dead)); /* EOF only after every item */
stopped: skip
}

/* ================ epoller: the readiness kind of waiter ================ */

#ifndef NO_EPOLLER
/* reg_ring_events(pd_conn_ring_events) for a registration asking for
 * EPOLLIN | EPOLLRDHUP | EPOLLET: what is there, and is any of it new since
 * the last look (et_head, et_last)?  Updates the edge state as the C does. */
inline ep_check() {
  atomic {
    h = head;                                 /* acquire */
    cur = ep_cur;                             /* h == et_head && et_last & IN */
    ep_cur = 1;                               /* et_head = h */
#ifdef EP_SPLIT_LOADS
  };
  atomic {
    t = tail;                                 /* acquire, later */
    assert(DIFF(h, t) <= N);                  /* C: EPOLLERR|EPOLLHUP, as for a */
                                              /* corrupt slot */
#else
    t = tail;                                 /* in one snapshot (README.md) */
#endif
    wc = wr_closed;
    in = (h != t || wc);                      /* EPOLLIN */
    rdy = (in && !cur) || (wc && !ep_hup);    /* an edge: new bytes, or a */
                                              /* condition not reported yet */
    ep_cur = ep_cur && in;                    /* et_last = ev (still 1 unless */
    ep_hup = wc;                              /* head moved since the load)  */
    h = 0; t = 0; cur = 0; in = 0; wc = 0
  }
}

/* Does the application lack news the epoller owes it?  Ring bytes it has
 * not reported (reg_ring_events' edge test on the current state), or the
 * end of stream when neither the ring's EPOLLRDHUP nor the socket's FIN
 * reached it. */
#define EP_NEWS ((head != tail && !ep_cur) || \
                 (wr_closed && !ep_hup && !ep_fin))

active proctype epoller()
{
  byte h, t;
  bit  cur, in, wc, rdy;

  do
  ::
#ifdef POLL_KIND
     ep_edge = 0;                             /* priv_drain: collect stale edges */
#endif
     ARM(reader_armed);                       /* pd_conn_arm: FENCE */
#ifndef BROKEN_EP_NO_RECHECK
     ep_check();                              /* scan_rings' re-check */
     if
     :: rdy ->                                /* reported: back to the app, */
        rdy = 0;                              /* which calls epoll_wait again */
        DISARM(reader_armed);
        goto ep_next
     :: else -> skip
     fi;
#endif
end_ep_wait:                                  /* epoll_wait: an edge of the */
     do                                       /* doorbell or of the socket */
     :: atomic {                              /* ep_send_events re-polls: the */
          (ep_edge && doorbell_rx) || ep_sock_edge ->   /* eventfd counts */
          ep_fin = ep_fin || ep_sock_edge;    /* the socket's RDHUP reported */
          ep_edge = 0;
          ep_sock_edge = 0;
          break
        }
#ifdef DRAINS
     :: atomic {                              /* count 0: the edge is dropped */
          ep_edge && !doorbell_rx && !ep_sock_edge ->   /* and it sleeps on */
          ep_edge = 0
        }
#endif
     od;
     DISARM(reader_armed);                    /* disarm_all */
#ifdef BROKEN_EP_DRAINS
     doorbell_rx = 0;                         /* read(efd): takes it all */
#endif
     /* translate's reg_ring_events, and the next epoll_wait's scans before
      * arming, are looks without the arm: the armed re-check of the next
      * round looks later, so sees at least as much (README.md) */
ep_next: skip
  od
}
#else
#define EP_NEWS 0
#endif

/* ======================= producer: the sender ======================= */

active proctype producer()
{
  byte hh = 0;              /* tx_head, private */
  byte tt;                  /* tail as loaded */
  byte sent = 0;            /* tx_tcp + ring bytes */
  byte k;
  bit  sw = 0;              /* tx_switched */
  bit  old;

  {
  do
  :: sent < K && !sw ->                       /* tcp_send: 1..K-sent items */
     atomic {
       k = 1;
       do
       :: k < K - sent -> k++
       :: break
       od;
       tcp_sent = tcp_sent + k;
       published = published + k;
       sent = sent + k
     }
  :: sent < K && !sw ->                       /* tx_use_ring: the switch */
#ifdef BROKEN_HANDOVER_ORDER
     switched = 1;
     tx_tcp_bytes = sent;
#else
     tx_tcp_bytes = sent;
     switched = 1;                            /* release; FENCE */
#endif
     sw = 1;
#ifndef NO_SWITCH_DOORBELL
     wake_reader();
#endif
  :: sent < K && sw ->                        /* ring_send, one chunk */
     tt = tail;                               /* acquire */
     assert(DIFF(hh, tt) <= N);               /* C: conn_reset */
     if
     :: DIFF(hh, tt) < N ->
        atomic {                              /* copy in 1..space items */
          k = 0;
          do
          :: k < N - DIFF(hh, tt) && sent < K ->
             sent++;
             ring[hh % N] = sent;
             hh = (hh + 1) % MODC;
             k++
          :: k > 0 -> break
          od
        };
#ifdef BROKEN_TX_WAKE_NO_FENCE
        if                                    /* reader_armed loaded first */
        :: reader_armed > 0 -> atomic { head = hh; published = sent; ep_cur = 0 }; ring_rx()
        :: else -> atomic { head = hh; published = sent; ep_cur = 0 }
        fi
#else
        atomic { head = hh; published = sent; ep_cur = 0 };   /* release; FENCE */
        wake_reader()
#endif
     :: else ->
        /* ---- wait_tx ---- */
#ifndef NO_SPIN
        if
        :: tt = tail;                         /* the bounded spin */
           if
           :: DIFF(hh, tt) < N -> goto pnext
           :: else -> skip
           fi
        :: skip
        fi;
#endif
        ARM(writer_armed);                    /* FENCE */
#ifndef BROKEN_TX_NO_RECHECK
        tt = tail;                            /* re-check */
        if
        :: DIFF(hh, tt) < N ->
           DISARM(writer_armed);
           goto pnext
        :: else -> skip
        fi;
#endif
end_wait_tx:
#ifdef BROKEN_WAIT_DRAINS
        doorbell_tx;                          /* poll(doorbell_tx, socket) */
        DISARM(writer_armed);
        doorbell_tx = 0                       /* doorbell_drain */
#else
        atomic { p_edge && doorbell_tx -> p_edge = 0 };   /* epoll_wait on */
        DISARM(writer_armed)                  /* the set; never read     */
#endif
     fi
  :: sent == K -> break
  pnext: skip
  od;
  pdone = 1;
  if
  :: /* close(), last reference: pd_conn_release_slot (wr_closed, both
      * doorbells) and the kernel's close (FIN), in either order */
     if
     :: wr_closed = 1; ring_rx(); fin_sent = 1
     :: fin_sent = 1; wr_closed = 1; ring_rx()
     fi
  :: /* shutdown(SHUT_WR): pd_conn_shutdown, then the kernel's */
     if
     :: sw -> wr_closed = 1; wake_reader()
     :: else -> skip
     fi;
     fin_sent = 1
  :: skip;              /* stays open (say, now awaiting a reply) */
end_open:
     false
  fi
  } unless {
     dead ->            /* killed at any point: the kernel closes the socket */
     fin_sent = 1
  }
}

/* The producer's process may be killed at any moment (or never). */
active proctype killer()
{
  if
  :: dead = 1
  :: skip
  fi
}

/* The kernel delivers TCP bytes, then the FIN, in order, in its own time. */
active proctype network()
{
end_net:
  do
  :: tcp_arr < tcp_sent -> atomic { tcp_arr++; c_sock_edge = 1 }
  :: fin_sent && tcp_arr == tcp_sent ->
     atomic { fin = 1; ep_sock_edge = 1; c_sock_edge = 1 }; break
  od
}

/* When nothing else can move, the run must be complete: no waiter is
 * asleep while what it waits for is there.
 *   consumer: unless the application stopped reading, every item delivered
 *             and EOF returned if the producer closed;
 *   producer: done, dead, or waiting for space in a full ring the
 *             application stopped reading;
 *   epoller:  no news owed to the application (EP_NEWS).
 * A lost wake-up ends here, a waiter asleep while its condition holds.
 * Each waiter has its own assertion, so a trail names the one that was lost. */
#define C_OK (c_stop || (got == published && (c_eof || !(fin || wr_closed))))
#define P_OK (pdone || dead || (c_stop && DIFF(head, tail) == N))
#define EP_OK (!EP_NEWS)
#define COMPLETE (C_OK && P_OK && EP_OK)
active proctype watchdog()
{
  timeout ->
  assert(C_OK);         /* consumer */
  assert(P_OK);         /* producer */
  assert(EP_OK)         /* epoller */
}

/* Liveness (pan -a): every run ends complete; also catches livelocks. */
ltl complete { <> [] COMPLETE }
