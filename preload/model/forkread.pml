/*
 * forkread.pml -- TWO processes reading one receiving end of a pipedevice
 * connection after fork(): the reader lock (rx_owner), the resync of the
 * private tail, the slot's shared TCP count (rx_tcp_bytes) across the
 * handover, and the wait/notify protocol with two blocking readers on one
 * armed count and one doorbell. See README.md in this directory.
 *
 * It follows preload/ring.c's forked paths:
 *   consumer(me) = pd_conn_recv_msg of process `me` (0 or 1) on a connection
 *                  marked forked: fork_rx_lock (take rx_owner, resync the
 *                  tail; the TCP count is the slot's), tcp_recv_once with
 *                  rx_tcp_count, ring_recv_once, fork_rx_unlock before every
 *                  wait and return, wait_rx with rx_ready on the slot's state
 *   producer     = the peer: tcp_send, the switch, ring_send, wait_tx; then
 *                  close / shutdown / stay open; killed at any point
 *   network      = the kernel delivering TCP bytes, then the FIN
 *   watchdog     = when nothing can move, asserts the run is complete
 * One item stands for a byte; K items in all, a prefix (0..K) by TCP before
 * the switch, the rest through a ring of N slots. Every statement is atomic
 * and interleavings are sequentially consistent (the shim's full fences,
 * FENCE, entitle the C to that where it matters). A statement that the C
 * does under rx_owner but the model does in several steps is still under
 * the model's lock, and each step is visible to the lock-free readers
 * (rx_ready of a waiter), as in the C: in particular the kernel read of TCP
 * bytes and the add to the shared count are two steps.
 *
 * The kernel socket is shared: `k_read` counts items taken out of its
 * receive queue by either process. Each process has its own waiting set
 * (its own EPOLLET registrations of the one doorbell and the one socket):
 * c_edge[me], c_sock_edge[me]. A doorbell write, a TCP arrival, the FIN are
 * an edge in both. The kernel's epoll_wait re-polls a file when it collects
 * its pending edge and drops the event if the file is not ready then: a
 * socket whose bytes the other process took is not (a doorbell is always
 * ready: nobody reads it).
 *
 * Switches (spin -D...):
 *   expected to verify:
 *     (none)                       the forked readers as ring.c implements them
 *     NO_READER_STOP               the readers never stop reading
 *     NO_SPIN                      no bounded spin before arming
 *     NO_KILLER                    the producer is never killed
 *   broken, expected to FAIL:
 *     BROKEN_NO_COUNT_DOORBELL     rx_tcp_count does not ring the doorbell
 *                                  when it completes the TCP prefix: the
 *                                  other reader's socket edge for those
 *                                  bytes is dropped (they are gone), and it
 *                                  sleeps with the ring readable
 *     BROKEN_NO_LOCK               no rx_owner: both copy from one tail
 *     BROKEN_NO_RESYNC             the private tail is not resynced
 *     BROKEN_PRIVATE_COUNT         each process counts only its own TCP
 *                                  bytes (the shim before rx_tcp_bytes)
 *     BROKEN_PRIVATE_READY         the waiter's re-check uses its private
 *                                  TCP count: it sleeps while the other
 *                                  process finished the prefix
 * Sizes: -DN=<ring slots> (default 2), -DK=<items> (default 3).
 */

#ifndef N
#define N 2
#endif
#ifndef K
#define K 3
#endif
#define MODC (2 * N)
#define DIFF(a, b) (((a) + MODC - (b)) % MODC)
#define MIN(a, b) ((a) < (b) -> (a) : (b))

/* ---- struct pd_dir_ctrl (shared memory) ---- */
byte head;                  /* producer line */
byte tx_tcp_bytes;
bit  switched;
bit  wr_closed;
byte tail;                  /* consumer line */
byte rx_owner;              /* 0 free, else 1 + the holder */
byte rx_tcp;                /* rx_tcp_bytes: TCP items read, both processes */
byte reader_armed;          /* wake line: counts, both processes' waiters */
byte writer_armed;
byte ring[N];

/* ---- kernel objects ---- */
byte tcp_sent;              /* items the producer send()-ed by TCP */
byte tcp_arr;               /* of those, arrived in the receive queue */
byte k_read;                /* of those, taken out of the queue by either reader */
bit  fin_sent;
bit  fin;
bit  doorbell_rx;           /* the readers' eventfd count != 0 (never read) */
bit  doorbell_tx;
bit  c_edge[2];             /* each reader's EPOLLET edge on doorbell_rx */
bit  c_sock_edge[2];        /* each reader's edge on the socket */
bit  p_edge;                /* the producer's edge on doorbell_tx */

/* ---- observation only ---- */
byte got;                   /* items delivered, by both, in stream order */
bit  c_eof[2];
bit  c_stop[2];
bit  pdone;
byte published;
bit  dead;

/* The socket is readable (POLLIN|POLLRDHUP): bytes queued, or the FIN. */
#define SOCK_READY (tcp_arr > k_read || fin)

inline ring_rx() {
  atomic { doorbell_rx = 1; c_edge[0] = 1; c_edge[1] = 1 }
}
inline ring_tx() {
  atomic { doorbell_tx = 1; p_edge = 1 }
}
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

#ifdef BROKEN_NO_LOCK
#define LOCK   skip
#define UNLOCK skip
#else
#define LOCK   atomic { rx_owner == 0 -> rx_owner = me + 1 }   /* fork_lock */
#define UNLOCK rx_owner = 0                                     /* release */
#endif

#ifdef BROKEN_PRIVATE_COUNT
#define CNT my_tcp
#else
#define CNT rx_tcp
#endif

#ifdef NO_READER_STOP
#define RETURNED goto next
#else
#define RETURNED \
  if \
  :: goto next \
  :: c_stop[me] = 1; goto stopped \
  fi
#endif

/* rx_ready, forked: the slot's state, not the private copies */
inline rx_ready() {
  if
  :: !rx_ring ->
     if
     :: !sw_seen -> rdy = switched
#if defined(BROKEN_PRIVATE_COUNT) || defined(BROKEN_PRIVATE_READY)
     :: else -> rdy = 0                       /* (the shim before) */
#else
     :: else -> rdy = (CNT >= tx_tcp_bytes)   /* the other finished the prefix */
#endif
     fi
  :: else ->
     rdy = (head != tail || wr_closed)        /* the slot's tail */
  fi
}

proctype consumer(byte me)
{
  byte t = 0;               /* rx_tail, private, resynced under the lock */
  byte limit, n, k;
  bit  rx_ring = 0;
  bit  sw_seen = 0;
  bit  sw;
  bit  sock_readable = 0;   /* rx_kcheck */
  bit  rx_fin = 0;
  bit  check_kernel;
  bit  rdy, ev_sock;
#ifdef BROKEN_PRIVATE_COUNT
  byte my_tcp = 0;
#endif

  do
  :: LOCK;
#ifndef BROKEN_NO_RESYNC
     t = tail;                                /* fork_rx_lock */
#endif
     if
     :: !rx_ring ->
        /* ---- tcp_recv_once ---- */
        sw = switched;
        if
        :: sw ->
           sw_seen = 1;
           limit = tx_tcp_bytes;
           assert(limit >= CNT);              /* C: conn_reset */
           if
           :: limit == CNT -> rx_ring = 1; UNLOCK; goto next   /* to the ring */
           :: else -> skip
           fi
        :: else -> limit = K
        fi;
        if
        :: tcp_arr > k_read && CNT < limit ->
           atomic {                           /* recvmsg, at most limit - count */
             n = MIN(tcp_arr - k_read, limit - CNT);
             k = 1;
             do
             :: k < n -> k++
             :: break
             od;
             assert(k_read == got);           /* TCP items first, in order */
             k_read = k_read + k;
             got = got + k
           };
           CNT = CNT + k;                     /* rx_tcp_count: the add; FENCE */
#ifndef BROKEN_NO_COUNT_DOORBELL
           if                                 /* the prefix is complete: wake */
           :: reader_armed > 0 && switched && CNT >= tx_tcp_bytes -> ring_rx()
           :: else -> skip
           fi;
#endif
           k = 0; n = 0;
           UNLOCK;
           RETURNED
        :: tcp_arr == k_read && fin ->        /* recv returned 0 */
           assert(!sw);
           if
           :: switched -> UNLOCK; goto wait
           :: else -> skip
           fi;
           UNLOCK;
           goto at_eof
        :: else -> UNLOCK; goto wait          /* -EAGAIN */
        fi
     :: else ->
        /* ---- ring_recv_once ---- */
        check_kernel = sock_readable;
        n = DIFF(head, t);
        assert(n <= N);                       /* C: conn_reset */
        if
        :: n > 0 ->
           atomic {
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
           tail = t;                          /* release; FENCE */
           wake_writer();
           k = 0; n = 0;
           UNLOCK;
           RETURNED
        :: else -> n = 0
        fi;
        if
        :: wr_closed ->
           if
           :: head != t -> UNLOCK; goto next
           :: else -> skip
           fi;
           UNLOCK;
           goto at_eof
        :: else -> skip
        fi;
        if
        :: rx_fin ->
           if
           :: head != t -> UNLOCK; goto next
           :: else -> skip
           fi;
           UNLOCK;
           goto at_eof
        :: else -> skip
        fi;
        if
        :: !check_kernel -> UNLOCK; goto wait
        :: else -> skip
        fi;
        sock_readable = 0;
        assert(tcp_arr == k_read);            /* C: reset if TCP after the switch */
        if
        :: fin ->
           rx_fin = 1;
           if
           :: head != t -> UNLOCK; goto next
           :: else -> skip
           fi;
           UNLOCK;
           goto at_eof
        :: else -> UNLOCK; goto wait
        fi
     fi;

wait:
     /* ---- wait_rx, without the lock ---- */
#ifndef NO_SPIN
     if
     :: rx_ready();
        if
        :: rdy -> rdy = 0; goto next
        :: else -> skip
        fi
     :: skip
     fi;
#endif
     reader_armed++;                          /* FENCE */
     rx_ready();                              /* re-check */
     if
     :: rdy ->
        rdy = 0;
        reader_armed--;
        goto next
     :: else -> skip
     fi;
end_poll:                                     /* epoll_wait on its own set: */
     do                                       /* it collects every pending   */
     :: atomic {                              /* edge, re-polling each file  */
          (c_edge[me] && doorbell_rx) || (c_sock_edge[me] && SOCK_READY) ->
          ev_sock = c_sock_edge[me] && SOCK_READY;
          c_edge[me] = 0;
          c_sock_edge[me] = 0;
          break
        }
     :: atomic {                              /* the socket's edge, with the */
          c_sock_edge[me] && !SOCK_READY &&   /* bytes taken by the other    */
          !(c_edge[me] && doorbell_rx) ->     /* process: not ready when     */
          c_sock_edge[me] = 0                 /* collected, dropped; it      */
        }                                     /* sleeps on                   */
     od;
     reader_armed--;
     if
     :: ev_sock -> sock_readable = 1
     :: else -> skip
     fi;
     ev_sock = 0;
next: skip
  od;

at_eof:
  c_eof[me] = 1;
  assert(got == published && (pdone || dead)); /* EOF only after every item */
stopped: skip
}

init {
  atomic {
    run consumer(0);
    run consumer(1)
  }
}

/* ======================= producer: the peer ======================= */

active proctype producer()
{
  byte hh = 0;
  byte tt;
  byte sent = 0;
  byte k;
  bit  sw = 0;

  {
  do
  :: sent < K && !sw ->                       /* tcp_send */
     atomic {
       k = 1;
       do
       :: k < K - sent -> k++
       :: break
       od;
       tcp_sent = tcp_sent + k;
       published = published + k;
       sent = sent + k;
       k = 0
     }
  :: sent < K && !sw ->                       /* tx_use_ring: the switch */
     tx_tcp_bytes = sent;
     switched = 1;                            /* release; FENCE */
     sw = 1;
     wake_reader()
  :: sent < K && sw ->                        /* ring_send, one chunk */
     tt = tail;
     assert(DIFF(hh, tt) <= N);
     if
     :: DIFF(hh, tt) < N ->
        atomic {
          k = 0;
          do
          :: k < N - DIFF(hh, tt) && sent < K ->
             sent++;
             ring[hh % N] = sent;
             hh = (hh + 1) % MODC;
             k++
          :: k > 0 -> break
          od;
          k = 0
        };
        atomic { head = hh; published = sent };   /* release; FENCE */
        wake_reader()
     :: else ->
        /* ---- wait_tx ---- */
#ifndef NO_SPIN
        if
        :: tt = tail;
           if
           :: DIFF(hh, tt) < N -> goto pnext
           :: else -> skip
           fi
        :: skip
        fi;
#endif
        writer_armed++;                       /* FENCE */
        tt = tail;
        if
        :: DIFF(hh, tt) < N ->
           writer_armed--;
           goto pnext
        :: else -> skip
        fi;
end_wait_tx:
        atomic { p_edge && doorbell_tx -> p_edge = 0 };
        writer_armed--
     fi
  :: sent == K -> break
  pnext: skip
  od;
  pdone = 1;
  if
  :: if                                       /* close() */
     :: wr_closed = 1; ring_rx(); fin_sent = 1
     :: fin_sent = 1; wr_closed = 1; ring_rx()
     fi
  :: if                                       /* shutdown(SHUT_WR) */
     :: sw -> wr_closed = 1; wake_reader()
     :: else -> skip
     fi;
     fin_sent = 1
  :: skip;                                    /* stays open */
end_open:
     false
  fi
  } unless {
     dead -> fin_sent = 1
  }
}

#ifndef NO_KILLER
active proctype killer()
{
  if
  :: dead = 1
  :: skip
  fi
}
#endif

active proctype network()
{
end_net:
  do
  :: tcp_arr < tcp_sent -> atomic { tcp_arr++; c_sock_edge[0] = 1; c_sock_edge[1] = 1 }
  :: fin_sent && tcp_arr == tcp_sent ->
     atomic { fin = 1; c_sock_edge[0] = 1; c_sock_edge[1] = 1 }; break
  od
}

/* When nothing can move: no reader asleep while there is something for it
 * (bytes nobody read, or the end of the stream it has not returned), and
 * the producer not asleep on a ring someone still reads. A reader that
 * stopped owes nothing; the other still owes every byte. */
#define C_OK(i) (c_stop[i] || (got == published && (c_eof[i] || !(fin || wr_closed))))
#define P_OK (pdone || dead || (c_stop[0] && c_stop[1] && DIFF(head, tail) == N))
active proctype watchdog()
{
  timeout ->
  assert(C_OK(0));
  assert(C_OK(1));
  assert(P_OK)
}
