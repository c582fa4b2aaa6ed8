/*
 * waitwake.pml -- the wait/notify protocol of ONE ring direction of a
 * pipedevice connection slot (struct pd_dir_ctrl), with the byte-exact
 * handover from kernel TCP and end of stream, checked with spin.
 * See README.md in this directory.
 *
 * It follows preload/ring.c statement by statement:
 *   consumer  = pd_conn_recv_msg: tcp_recv_once, ring_recv_once, wait_rx, rx_ready
 *   producer  = pd_conn_send_msg: tx_use_ring (the switch), tcp_send,
 *               ring_send, wait_tx, tx_ready; then close / shutdown / death
 *   network   = the kernel delivering TCP bytes, then the FIN
 *   killer    = may kill the producer before any of its statements
 *   watchdog  = when nothing can move, asserts the run is complete
 * One item stands for a byte.  K items are sent in all, a prefix (0..K) by TCP
 * before the switch, the rest through a ring of N slots, in chunks of any size
 * the space allows; the consumer reads chunks of any size.  Every Promela
 * statement is atomic and interleavings are sequentially consistent: the
 * shim's full fences (pd_fence_full, pd_xchg) are what make the C behave like
 * this at the points marked FENCE.  The BROKEN_*_NO_FENCE variants model a
 * missing fence as the store->load reordering it would permit.
 *
 * Shared memory (src/datapath/layout.ts, struct dir_ctrl):
 *   head, tail       free-running counters, here modulo MODC; only their
 *                    difference is used, checked against N like the C does
 *   tx_tcp_bytes     bytes the producer sent by TCP before switching
 *   switched         set (release) after tx_tcp_bytes
 *   wr_closed        set (release) after the last head publish
 *   reader_armed     consumer is about to sleep waiting for data
 *   writer_armed     producer is about to sleep waiting for space
 * Kernel objects:
 *   tcp_sent, tcp_arr, rx_tcp   TCP bytes sent, arrived, received
 *   fin_sent, fin               close()/shutdown()/death; FIN arrived
 *   doorbell_rx, doorbell_tx    eventfds: write adds 1, read takes all
 *
 * Switches (spin -D...):
 *   expected to verify:
 *     (none)                 the protocol as preload/ring.c implements it
 *     KEEP_ARMED_ON_RECHECK  a waiter whose re-check succeeds leaves its
 *                            armed flag set (the C clears it)
 *     NO_SWITCH_DOORBELL     no wake_reader after setting switched
 *     NO_SPIN                PD_SPIN_US=0: no bounded spin before arming
 *   broken, expected to FAIL:
 *     BROKEN_RX_NO_RECHECK        consumer arms and sleeps, no re-check
 *     BROKEN_RX_NO_FENCE          consumer's re-check loads overtake its
 *                                 armed store (check, arm, sleep)
 *     BROKEN_TX_NO_RECHECK        producer arms and sleeps, no re-check
 *     BROKEN_TX_WAKE_NO_FENCE     producer loads reader_armed before its
 *                                 head store is visible
 *     BROKEN_RX_WAKE_NO_FENCE     consumer loads writer_armed before its
 *                                 tail store is visible
 *     BROKEN_PRESWITCH_NO_ARM     before the ring, the consumer sleeps on
 *                                 poll(socket, doorbell) without arming
 *     BROKEN_RX_POLL_DOORBELL_ONLY  the consumer's poll leaves out the socket
 *     BROKEN_HANDOVER_ORDER       switched published before tx_tcp_bytes
 *     BROKEN_EOF_NO_RECHECK       ring EOF (wr_closed or FIN) returned
 *                                 without re-checking head
 *     BROKEN_FIN_NO_SWITCH_RECHECK  pre-switch FIN returned as EOF without
 *                                 re-loading switched
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

/* ---- struct pd_dir_ctrl (shared memory) ---- */
byte head;                  /* producer line */
byte tx_tcp_bytes;
bit  switched;
bit  wr_closed;
byte tail;                  /* consumer line */
bit  reader_armed;          /* wake line */
bit  writer_armed;
byte ring[N];               /* ring slots: item numbers 1..K */

/* ---- kernel objects ---- */
byte tcp_sent;              /* items the producer send()-ed by TCP */
byte tcp_arr;               /* of those, arrived in the receive queue */
byte rx_tcp;                /* items the consumer received from TCP */
bit  fin_sent;              /* the producer's socket was closed / shut down */
bit  fin;                   /* the FIN arrived (after every TCP byte) */
byte doorbell_rx;           /* consumer's eventfd: it sleeps here for data */
byte doorbell_tx;           /* producer's eventfd: it sleeps here for space */

/* ---- observation only ---- */
byte got;                   /* items the consumer delivered, in order */
bit  c_eof;                 /* consumer returned EOF */
bit  pdone;                 /* producer has sent all K items */
byte published;             /* items made visible: TCP sends + head stores */
bit  dead;                  /* the producer process was killed */

/* wake_reader / wake_writer after the FENCE:
 * if (load_relaxed(flag) && xchg(flag, 0)) write(doorbell) */
inline wake(flag, doorbell) {
  if
  :: flag ->
     atomic { old = flag; flag = 0 };
     if
     :: old -> doorbell++
     :: else -> skip
     fi
  :: else -> skip
  fi
}

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

active proctype consumer()
{
  byte t = 0;               /* rx_tail, private */
  byte h;                   /* head as loaded */
  byte limit, n, k;
  bit  rx_ring = 0;         /* peer switched and its TCP bytes are all read */
  bit  sw_seen = 0;         /* rx_sw_seen */
  bit  sw;
  bit  sock_readable = 0;   /* the last poll reported the socket */
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
           sock_readable = 0;                 /* r > 0: back to the app; the */
           goto next                          /* next call starts afresh   */
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
        /* ---- ring_recv_once(check_kernel = sock_readable) ---- */
        check_kernel = sock_readable;
        sock_readable = 0;
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
           if
           :: writer_armed -> tail = t; atomic { old = writer_armed; writer_armed = 0 };
              if
              :: old -> doorbell_tx++
              :: else -> skip
              fi
           :: else -> tail = t
           fi;
#else
           tail = t;                          /* release; FENCE */
           wake(writer_armed, doorbell_tx);
#endif
           goto next
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
        :: !check_kernel -> goto wait
        :: else -> skip
        fi;
        /* recv(MSG_PEEK | MSG_DONTWAIT) on the kernel socket */
        assert(tcp_arr == rx_tcp);            /* C: reset if TCP after the switch */
        if
        :: fin ->
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
     :: !rx_ring -> goto sleep
     :: else -> skip
     fi;
#endif
#if defined(BROKEN_RX_NO_FENCE)
     rx_ready();                              /* the load overtakes the store */
     reader_armed = 1;
#elif defined(BROKEN_RX_NO_RECHECK)
     reader_armed = 1;
     rdy = 0;
#else
     reader_armed = 1;                        /* FENCE */
     rx_ready();                              /* re-check */
#endif
     if
     :: rdy ->
#ifndef KEEP_ARMED_ON_RECHECK
        reader_armed = 0;
#endif
        goto next
     :: else -> skip
     fi;
sleep:
end_poll:                                     /* poll(socket, doorbell_rx) */
#ifdef BROKEN_RX_POLL_DOORBELL_ONLY
     atomic { doorbell_rx > 0 -> ev_db = 1; ev_sock = 0 };
#else
     atomic {
       (doorbell_rx > 0 || tcp_arr > rx_tcp || fin) ->
       ev_db = (doorbell_rx > 0);
       ev_sock = (tcp_arr > rx_tcp || fin)
     };
#endif
     reader_armed = 0;
     if
     :: ev_db -> doorbell_rx = 0              /* doorbell_drain: takes it all */
     :: else -> skip
     fi;
     if
     :: ev_sock -> sock_readable = 1
     :: else -> skip
     fi;
next: skip
  od;

at_eof:
  c_eof = 1;
  assert(got == published && (pdone || dead)) /* EOF only after every item */
}

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
     wake(reader_armed, doorbell_rx);
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
        if
        :: reader_armed ->
           atomic { head = hh; published = sent };
           atomic { old = reader_armed; reader_armed = 0 };
           if
           :: old -> doorbell_rx++
           :: else -> skip
           fi
        :: else -> atomic { head = hh; published = sent }
        fi
#else
        atomic { head = hh; published = sent };   /* release; FENCE */
        wake(reader_armed, doorbell_rx)
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
        writer_armed = 1;                     /* FENCE */
#ifndef BROKEN_TX_NO_RECHECK
        tt = tail;                            /* re-check */
        if
        :: DIFF(hh, tt) < N ->
#ifndef KEEP_ARMED_ON_RECHECK
           writer_armed = 0;
#endif
           goto pnext
        :: else -> skip
        fi;
#endif
        doorbell_tx > 0;                      /* poll(doorbell_tx, socket) */
        writer_armed = 0;
        doorbell_tx = 0                       /* doorbell_drain */
     fi
  :: sent == K -> break
  pnext: skip
  od;
  pdone = 1;
  if
  :: /* close(), last reference: pd_conn_release_slot (wr_closed, both
      * doorbells) and the kernel's close (FIN), in either order */
     if
     :: wr_closed = 1; doorbell_rx++; fin_sent = 1
     :: fin_sent = 1; wr_closed = 1; doorbell_rx++
     fi
  :: /* shutdown(SHUT_WR): pd_conn_shutdown, then the kernel's */
     if
     :: sw -> wr_closed = 1; wake(reader_armed, doorbell_rx)
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
  :: tcp_arr < tcp_sent -> tcp_arr++
  :: fin_sent && tcp_arr == tcp_sent -> fin = 1; break
  od
}

/* When nothing else can move, the run must be complete: every item
 * delivered, the producer done, and EOF returned if the producer closed.
 * A lost wake-up ends here, one side asleep while its condition holds. */
#define COMPLETE (got == published && (pdone || dead) && (c_eof || !(fin || wr_closed)))
active proctype watchdog()
{
  timeout -> assert(COMPLETE)
}

/* Liveness (pan -a): every run ends complete; also catches livelocks. */
ltl complete { <> [] COMPLETE }
