/*
 * waitwake.pml -- the wait/notify protocol of ONE ring direction of a
 * pipedevice connection slot (struct pd_dir_ctrl), with the byte-exact
 * handover from kernel TCP and EOF, checked with spin.
 *
 * Producer = the sending end of the direction, consumer = the receiving end.
 * One item stands for one byte (or one send); K items are sent in all, some
 * (nondeterministically 0..K) by TCP before the switch, the rest by a ring of
 * N slots.  Every Promela statement is atomic and the interleaving is
 * sequentially consistent: a "full fence" in the C code is what makes the C
 * behave like this model at the points marked FENCE.  The broken variants
 * below model a missing fence as the reordering it permits.
 *
 * Shared memory (names as in src/datapath/layout.ts, struct dir_ctrl):
 *   head, tail          free-running counters, kept here modulo MODC and
 *                       compared only through their difference
 *   tx_tcp_bytes        items the producer sent by TCP before switching
 *   switched            set by the producer (release, after tx_tcp_bytes)
 *   reader_armed        consumer is about to sleep waiting for data
 *   writer_armed        producer is about to sleep waiting for space
 * Kernel objects:
 *   tcp_sent, tcp_arr,  the kernel TCP socket: items sent, arrived in the
 *   rx_tcp              receive queue (process `network`), received
 *   fin_sent, fin       the producer closed; the FIN arrived after the data
 *   doorbell_rx/_tx     eventfd counters: write adds 1, read takes all
 *
 * Switches (spin -D...):
 *   correct protocol, expected to verify:
 *     (none)               the protocol as the shim implements it
 *     CLEAR_ON_RECHECK     consumer/producer clear their armed flag when
 *                          the re-check after arming finds work
 *     NO_SWITCH_DOORBELL   the producer does not ring after setting switched
 *   broken, expected to FAIL (shows the check has teeth):
 *     BROKEN_RX_NO_RECHECK     consumer arms and sleeps without re-checking
 *     BROKEN_RX_NO_FENCE       consumer's re-check load overtakes its arm
 *                              store (no fence: check, then arm, then sleep)
 *     BROKEN_TX_NO_RECHECK     producer arms and sleeps without re-checking
 *     BROKEN_TX_WAKE_NO_FENCE  producer loads reader_armed before its head
 *                              store is visible
 *     BROKEN_RX_WAKE_NO_FENCE  consumer loads writer_armed before its tail
 *                              store is visible
 *     BROKEN_PRESWITCH_NO_ARM  before the switch the consumer sleeps on the
 *                              socket without arming (relies on TCP alone)
 *     BROKEN_HANDOVER_ORDER    producer publishes switched before tx_tcp_bytes
 *     BROKEN_EOF_NO_RECHECK    consumer returns EOF on FIN without re-checking
 *                              the ring after seeing it
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

/* ---- struct dir_ctrl (shared memory) ---- */
byte head;                  /* producer line */
byte tx_tcp_bytes;
bit  switched;
byte tail;                  /* consumer line */
bit  reader_armed;          /* wake line */
bit  writer_armed;
byte ring[N];               /* ring slots: item numbers 1..K */

/* ---- kernel objects ---- */
byte tcp_sent;              /* items the producer has send()-ed by TCP */
byte tcp_arr;               /* of those, arrived in the receive queue */
byte rx_tcp;                /* items the consumer has received from TCP */
bit  fin_sent;              /* producer called close() */
bit  fin;                   /* the FIN arrived (after every TCP byte) */
byte doorbell_rx;           /* consumer's eventfd (it sleeps here for data) */
byte doorbell_tx;           /* producer's eventfd (it sleeps here for space) */

/* ---- observation only ---- */
byte got;                   /* items the consumer has delivered, in order */
bit  eof;                   /* consumer returned EOF */
bit  pdone;                 /* producer has sent all K items */

/* exchange(flag, 0) == 1 ? write(doorbell) : nothing */
inline wake(flag, doorbell) {
  atomic { old = flag; flag = 0 };
  if
  :: old -> doorbell++
  :: else -> skip
  fi
}

/* ================= consumer (receiving end) ================= */

/* One non-blocking look for the next item: avail = 0 none, 1 TCP, 2 ring.
 * Reads switched (acquire) then tx_tcp_bytes, then the source it selects. */
inline probe() {
  if
  :: !sw ->
     sw = switched;
     if
     :: sw -> txb = tx_tcp_bytes
     :: else -> skip
     fi
  :: else -> skip
  fi;
  if
  :: !sw || rx_tcp < txb ->               /* still reading TCP */
     if
     :: tcp_arr > rx_tcp -> avail = 1
     :: else -> avail = 0
     fi
  :: else ->                              /* TCP prefix done: the ring */
     h = head;
     if
     :: h != t -> avail = 2
     :: else -> avail = 0
     fi
  fi
}

active proctype consumer()
{
  byte t = 0;               /* private tail */
  byte h;                   /* head as read once */
  byte txb = 0;
  bit  sw = 0;
  byte avail;
  byte n, k;
  bit  old;

  do
  :: probe();
     if
     :: avail == 1 ->                         /* recv() from the socket */
        rx_tcp++;
        assert(rx_tcp == got + 1);            /* TCP item number rx_tcp */
        got++
     :: avail == 2 ->                         /* take one from the ring */
        n = DIFF(h, t);
        assert(n >= 1 && n <= N);             /* a sane head: never past it */
        k = 0;
        do                                    /* copy out 1..n items */
        :: k < n ->
           assert(ring[t % N] == got + 1);    /* in order, exactly once */
           got++;
           t = (t + 1) % MODC;
           k++
        :: k > 0 -> break
        od;
#ifdef BROKEN_RX_WAKE_NO_FENCE
        if
        :: writer_armed -> tail = t; wake(writer_armed, doorbell_tx)
        :: else -> tail = t
        fi
#else
        tail = t;                             /* publish; FENCE */
        if
        :: writer_armed -> wake(writer_armed, doorbell_tx)
        :: else -> skip
        fi
#endif
     :: avail == 0 ->
        if
        :: fin ->                             /* recv() returned 0 */
#ifndef BROKEN_EOF_NO_RECHECK
           probe();                           /* re-check after the FIN */
           if
           :: avail != 0 -> goto next
           :: else -> skip
           fi;
#endif
           eof = 1;
           assert(got == K && pdone);         /* EOF only after every item */
           break
        :: else -> skip
        fi;
#ifdef BROKEN_PRESWITCH_NO_ARM
        if
        :: !sw -> goto sleep                  /* trust the socket to wake us */
        :: else -> skip
        fi;
#endif
#if defined(BROKEN_RX_NO_FENCE)
        probe();                              /* load before the store */
        reader_armed = 1;
#elif defined(BROKEN_RX_NO_RECHECK)
        reader_armed = 1;
        avail = 0;
#else
        reader_armed = 1;                     /* FENCE */
        probe();                              /* re-check */
#endif
        if
        :: avail != 0 ->
#ifdef CLEAR_ON_RECHECK
           reader_armed = 0;
#endif
           skip                               /* C: leave it armed, proceed */
        :: else ->
sleep:
end_sleep:                                    /* poll(socket, doorbell_rx) */
           (doorbell_rx > 0 || tcp_arr > rx_tcp || fin);
           doorbell_rx = 0;                   /* eventfd read takes it all */
           reader_armed = 0
        fi
     fi;
next: skip
  od
}

/* ================= producer (sending end) ================= */

active proctype producer()
{
  byte hh = 0;              /* private head */
  byte tt;                  /* tail as read once */
  byte sent = 0;
  byte k;
  bit  sw = 0;
  bit  old;

  do
  :: sent < K && !sw ->                       /* send() by TCP, pre-switch */
     tcp_sent++;
     sent++
  :: !sw ->                                   /* the switch (peer attached) */
#ifdef BROKEN_HANDOVER_ORDER
     switched = 1;
     tx_tcp_bytes = sent;
#else
     tx_tcp_bytes = sent;
     switched = 1;                            /* release; FENCE */
#endif
     sw = 1;
#ifndef NO_SWITCH_DOORBELL
     if
     :: reader_armed -> wake(reader_armed, doorbell_rx)
     :: else -> skip
     fi
#endif
  :: sent < K && sw ->                        /* send() into the ring */
     tt = tail;
     if
     :: DIFF(hh, tt) < N ->
        k = 0;
        do                                    /* copy in 1..space items */
        :: k < N - DIFF(hh, tt) && sent < K ->
           sent++;
           ring[hh % N] = sent;               /* never a slot not consumed */
           hh = (hh + 1) % MODC;
           k++
        :: k > 0 -> break
        od;
#ifdef BROKEN_TX_WAKE_NO_FENCE
        if
        :: reader_armed -> head = hh; wake(reader_armed, doorbell_rx)
        :: else -> head = hh
        fi
#else
        head = hh;                            /* publish; FENCE */
        if
        :: reader_armed -> wake(reader_armed, doorbell_rx)
        :: else -> skip
        fi
#endif
     :: else ->                               /* ring full: wait for space */
        writer_armed = 1;                     /* FENCE */
#ifndef BROKEN_TX_NO_RECHECK
        tt = tail;                            /* re-check */
        if
        :: DIFF(hh, tt) < N ->
#ifdef CLEAR_ON_RECHECK
           writer_armed = 0;
#endif
           goto pnext
        :: else -> skip
        fi;
#endif
        (doorbell_tx > 0);                    /* poll(doorbell_tx) */
        doorbell_tx = 0;
        writer_armed = 0
     fi
  :: sent == K -> break
  pnext: skip
  od;
  pdone = 1;
  if
  :: fin_sent = 1       /* close(): FIN after the last head publish */
  :: skip               /* or keep the connection open (e.g. await a reply) */
  fi
}

/* The kernel delivers TCP bytes, then the FIN, in order and in its own time
 * (the socket becomes readable; poll() on it wakes the consumer). */
active proctype network()
{
end_net:
  do
  :: tcp_arr < tcp_sent -> tcp_arr++
  :: fin_sent && tcp_arr == tcp_sent -> fin = 1; break
  od
}

/* When nothing else can move, the run must be complete: every item delivered,
 * the producer done, and EOF returned if the producer closed.  A lost wake-up
 * ends here with one side asleep while its condition holds. */
active proctype watchdog()
{
  timeout -> assert(got == K && pdone && (eof || !fin))
}

/* Liveness (pan -a): every run ends complete; catches livelocks too. */
ltl complete { <> [] (got == K && pdone && (eof || !fin)) }
