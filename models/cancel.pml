/*
 * cancel.pml -- the cancel protocol of cancelio (docs/protocol.md) as a
 * Promela model for spin.  How to run it: models/check.sh.  What it
 * contains and how it maps to the C code: docs/model-checking.md.
 *
 * One file, one direction (reads): a caller runs NOPS ops one after another,
 * the pool runs them on worker threads (max_threads = 1, so an op can wait in
 * the pool's queue too, and an idle worker may retire and be replaced), a
 * canceller (deadline expiry / cio_cancel) and a closer (cio_close) stop the
 * op in flight at any moment, the kernel delivers signals, and a stray
 * process-directed signal may land on a worker at any moment.
 *
 * Atomicity.  Every critical section under file->mu is one atomic step that
 * takes the lock, does its work and lets go of it.  That loses no behaviour
 * (Lipton's reduction): the steps other threads take without file->mu touch
 * only the pending-signal bits, the pool's queue (under pool.mu) or read
 * op->reason (the EINTR check), and such a step, falling inside a section,
 * commutes with every access of the section but at most one, so it can be
 * moved to just before or just after the section and nobody sees a
 * difference.  It also makes weak fairness mean what the real mutex gives:
 * a lock held across several model steps would let a thread that loops on
 * it (the re-signalling caller) starve the others, which the real back-off
 * (0.5 ms .. 64 ms of sleep between re-signals) never does.  The steps the
 * protocol is about stay separate steps: the user-space window between
 * step 2 and the syscall, entering the syscall, its return, the lock-free
 * reason check after EINTR, the pool hand-off (pool.mu, then file->mu), and
 * every signal sent or delivered.
 *
 * Time.  Nothing in the model counts time: the caller's back-off timer may
 * run out at any moment, a delivered signal may wait any number of steps,
 * and the liveness checks run with weak fairness (pan -f): a thread that can
 * always move eventually does.
 *
 * Notes (src/plan9/note.c, rule 16): the caller is a thread with a
 * cio_proc (its begin and end steps are always in the model), and with
 * -DNOTES a poster (cio_postnote, or the alarm) queues NNOTES notes at any
 * moment.  check.sh checks it with smaller bounds (NOPS=2, NCANCEL=1): the
 * notes multiply the state space.  A note is a third reason (R_INTR, EINTR): it interrupts
 * the op in flight, or the next op the caller starts is refused.
 *
 * Kernel timers (steps 2a, 3a, 5a; -DKTIMER, checked at smaller bounds):
 * each new worker has a timer of its own or not (timer_create may fail, or
 * the platform has none).  Step 2 arms it at the op's deadline; a `clock`
 * lets that deadline pass while the op is in flight, and the timer thread
 * then leaves a RUNNING op whose worker's timer is armed to that timer;
 * `ktimer` signals the worker again and again once its timer fires; the
 * worker, finding the deadline passed after EINTR, sets ETIMEDOUT itself
 * (3a), or at step 2, before any syscall (stale_reason).  A canceller arms
 * the timer to repeat the signal (5a) instead of leaving it to the caller.
 * Step 6 disarms it.
 *
 * Parked reads (steps 3p, 4p; -DPARK): the worker blocks the cancel signal,
 * publishes PARKED in its park word and waits in ppoll, which unblocks the
 * signal for the wait alone; back from it, it takes the word back (a
 * compare-and-swap) and reads without blocking, or finds that a stop
 * released the op: the stop found the word PARKED, took it, finished the
 * op itself and woke the caller, and then, with file->mu let go, sends the
 * worker one signal and says GONE, which the worker waits for before it
 * goes back to the pool.  A worker that is not parked (it reads) is
 * stopped as in steps 4-6, its signal pending until its next wait.
 *
 * Reads parked on their caller (steps 3c, 4c; -DCPARK): the file has a
 * try (a pipe, a socket), so every op is tried, and one whose try said
 * EAGAIN does not go to the pool: its caller, the cancel signal blocked,
 * publishes park_due and then IN in the op's park word, looks at the
 * reason and the deadline, and waits in ppoll (the signal unblocked for
 * the wait alone) for data, the signal, or park_due; back, it takes the
 * word back.  A stop that finds the word IN takes it (RELEASED) and, once
 * it has let go of file->mu, says GONE and then signals the caller; a
 * deadline moved earlier than park_due does the same with no reason (a
 * nudge).  The signal's handler counts the signals its thread took
 * (cio__signal_seen).  A caller that finds its word taken waits for GONE,
 * stores NONE and settles: if its handler ran since it recorded the
 * count (as the wait began), it takes a pending signal if any; else it
 * waits for the signal (sigwaitinfo), which comes next.  It restores its
 * mask when it leaves, and finishes the op itself.  With -DCPARK_TO_WORKER
 * it may instead hand the op to the pool after all (CIO__TO_WORKER); with
 * -DCPARK_KILL_FIRST a release signals before GONE (the order of 4p).
 * Time is one deadline for the file (SOON or NEVER), moved once by a
 * setter, and a `now` that lets SOON pass.  The checks then also say (h):
 * the caller never waits in ppoll, its word IN, with a timeout later than
 * its op's deadline; and (i): the signal of a release comes before its
 * caller has settled that release (and is taken by the settle), so that
 * none is pending when the caller restores its mask nor comes later,
 * unless a stray signal was taken in the wait the release ended.
 *
 * Mutants (spin -D<NAME> -a, see models/check.sh): NO_RESIGNAL,
 * CHECK_UNLOCKED, EINTR_IS_CANCEL, KICK_AFTER_LEAVE, SA_RESTART,
 * NOTE_UNARMED, with -DKTIMER NO_KTIMER_REPEAT, KTIMER_NOT_DISARMED,
 * with -DPARK PARK_UNMASKED, PARK_NO_GONE, PARK_CLOSE_EARLY, and with
 * -DCPARK CPARK_CHECK_FIRST, CPARK_NO_GONE, CPARK_NO_NUDGE, CPARK_NO_SETTLE,
 * CPARK_SEEN_AT_PPOLL.
 * Witnesses
 * (-DW_<NAME>) are assertions that fail when a scenario is reachable, so
 * that the checks are known not to pass vacuously.  -DORPHAN adds rule 15
 * (a caller may give up on a RUNNING op with a reason and leave it to its
 * worker), as on regular files and block devices; it is not part of the
 * real model because it fails (b), see docs/model-checking.md.
 */

#ifndef NOPS
#define NOPS 3          /* ops the caller runs back to back */
#endif
#define NW NOPS         /* thread ids: the pool starts at most one per op */
#ifndef NCANCEL
#define NCANCEL 2       /* deadline expiries / cio_cancel calls */
#endif
#ifndef NSTRAY
#define NSTRAY 1        /* kill(getpid(), SIGUSR1) from someone else */
#endif
#define MAXT 1          /* pool.cfg.max_threads */
#ifndef NNOTES
#define NNOTES 1        /* notes posted to the caller (< CIO_NNOTE: no EAGAIN) */
#endif
#if NOPS > 4
#error "the kernel and stray processes below list threads 0..3 only"
#endif
#if defined(KTIMER) && defined(ORPHAN)
#error "an op that may be orphaned does not use its worker's timer (op.c:ktimer_of)"
#endif
#if defined(CPARK) && (defined(PARK) || defined(KTIMER) || defined(ORPHAN))
#error "CPARK is checked alone: its tried reads park on their caller, not on a worker"
#endif

#define NONE 255

/* op->state (src/internal.h) */
#define NEW     0
#define QUEUED  1
#define RUNNING 2
#define DONE    3

/* op->reason, and op->result: a reason, data, or "refused at step 1" */
#define R_TIMEDOUT 1
#define R_CANCELED 2
#define R_BADF     3
#define RES_DATA   4    /* the syscall moved data (or hit EOF) */
#define RES_CLOSED 5    /* enter_locked saw `closing`: the op never started */
#define R_INTR     6    /* a note (EINTR), the third reason */
#define RES_REFUSED 7   /* begin saw a note pending: the op never started */
#define IS_CANCEL(r) ((r) == R_TIMEDOUT || (r) == R_CANCELED || (r) == R_BADF || (r) == R_INTR)

/* who holds file->mu */
#define FREE      0
#define CALLER    1
#define CANCELLER 2
#define CLOSER    3
#define WORKER(w) (4 + (w))
#define POSTER    8
#define TIMER     9     /* the timer thread, at a deadline (KTIMER) */
#define SETTER    10    /* cio_set_read_deadline (CPARK) */

/* ---------------------------------------------------------------- state */

byte mu = FREE;                 /* file->mu */

/* the ops, indexed by op id: each has its own fields, like each cio__op */
byte st[NOPS];                  /* op->state */
byte wk[NOPS] = NONE;           /* op->worker: a thread id, or NONE */
byte reason[NOPS];              /* op->reason, 0 = none */
byte res[NOPS];                 /* op->result, 0 = not yet */
bool kicked[NOPS];              /* op->signals > 0 */
bool data[NOPS];                /* the environment: data arrives for this op */
bool owed[NOPS];                /* a canceller found pool.mu busy and woke the
                                 * caller to take op k back itself */

/* the file, one direction */
byte cur = NONE;                /* d->ops: the op in flight (reads: one) */
bool closing;                   /* f->closing */
bool inside;                    /* f->ops > 0: the caller is in cio__file_do */

/* the pool (pool.mu) */
byte queue = NONE;              /* pool.queue; one caller => at most one op */
byte idle_w = NONE;             /* pool.idle_head: the idle worker, if any */
byte handoff = NONE;            /* w->op of the idle worker */
byte handw = NONE;              /* op->handed: the worker handoff went to */
byte threads;                   /* pool.threads */
byte nextw;                     /* id of the next thread new_worker_locked makes */

/* threads, as the kernel sees them */
bool alive[NW];                 /* the thread exists */
bool pend[NW];                  /* the cancel signal is pending on it */
bool insys[NW];                 /* it is blocked inside read(2) */
byte in_op[NW] = NONE;          /* ghost: the op it is inside (steps 2..6) */

bool all_done;                  /* ghost: the caller returned from every op */

/* the caller's cio_proc (plan9/note.c) */
byte pmu = FREE;                /* proc->mu; ranks above file->mu */
byte nq;                        /* notes pending (proc->n) */
byte pub = NONE;                /* proc->op: the op the caller is in */
byte armed;                     /* proc->armed, under file->mu: 0 published
                                 * but not prepared, 1 prepared, 2 finished */
bool hit[NOPS];                 /* ghost: a note came while op k was
                                 * published and not finished */
bool noted[NOPS];               /* ghost: a note interrupted op k (or tried
                                 * to: an earlier reason may stand), or
                                 * refused it */

#ifdef ORPHAN
/* Rule 15 (src/io/orphan.c): on a file that may orphan, a caller whose worker
 * does not answer within CIO__ORPHAN_GRACE returns the reason and leaves
 * the op to the worker.  The read direction stays busy until then. */
bool orphaned[NOPS];            /* op->orphaned */
byte orph = NONE;               /* d->orphan */
#endif

#ifdef KTIMER
/* Kernel timers (op.c ktimer_*, pool.c worker_main, platform/wtimer_thread.c).
 * Every op has a deadline, which the clock may never let pass.  An op with
 * no deadline differs from such an op only in that step 2 does not arm its
 * worker's timer (op->ktimer stays 0 until a cancel's 5a sets it); but a
 * timer armed at a deadline that never passes never fires, and op->ktimer
 * is looked at only with a reason set (by then 5a has set it anyway, on a
 * worker with a timer) or once the deadline passed: nobody can tell the
 * two apart, and the model saves a choice per op. */
bool hastimer[NW];              /* cio__worker_timer(w) != NULL */
byte kt[NW];                    /* w's timer: KT_OFF, KT_DUE, KT_REPEAT */
byte ktop[NW] = NONE;           /* ghost: the op it was armed for */
byte kleft[NW] = NONE;          /* ghost: the op its worker has left (step 6)
                                 * while the timer is still armed for it */
bool opkt[NOPS];                /* op->ktimer */
bool passed[NOPS];              /* time: op->due has passed */
#define KT_OFF    0             /* disarmed */
#define KT_DUE    1             /* armed at the op's deadline (2a): fires
                                 * once that deadline passes, then repeats */
#define KT_REPEAT 2             /* armed to repeat a cancel's signal (5a) */
#endif

#ifdef PARK
/* Steps 3p and 4p (op.c release_locked, cio__op_park/unpark, released;
 * io.c read_parked; platform/park_ppoll.c). */
byte park[NW];                  /* the worker's park word */
#define P_NONE 0
#define P_IN   1                /* parked: a stop may release the op */
#define P_REL  2                /* released: the worker waits for GONE */
#define P_GONE 3                /* its releaser has sent the signal */
bool masked[NW];                /* it blocks the cancel signal (to park) */
byte owe = NONE;                /* a release's signal and GONE, not yet paid */
byte nparked;                   /* f->parked: released workers not yet out of
                                 * their wait (a close waits for them) */
byte owe_by = NONE;             /* by whom (it pays once it lets go of mu) */
#endif

#ifdef CPARK
/* Steps 3c and 4c (op.c cio__op_caller_begin_locked/_end_locked,
 * cio__op_caller_park, cio__op_caller_unpark, caller_release_locked, pay;
 * io.c run_on_caller; platform/park_ppoll.c cio__park_caller_*).  One
 * caller, so one park word and one park_due: those of the op it runs. */
bool oncall[NOPS];              /* op->on_caller */
byte cword;                     /* op->park_word: P_NONE .. P_GONE */
#define P_NONE 0
#define P_IN   1                /* parked: a stop may release it */
#define P_REL  2                /* released: the caller waits for GONE */
#define P_GONE 3                /* its releaser is done with the op */
/* Time: the file's read deadline (d->deadline, which op->due follows:
 * due_all_locked) is SOON or NEVER; `now` says SOON has passed.  The
 * caller chooses it before its first op; the setter moves it once. */
byte due;                       /* op->due: 0 (not chosen yet), DUE_SOON, DUE_NEVER */
#define DUE_SOON  1
#define DUE_NEVER 2
byte pdue = DUE_NEVER;          /* op->park_due */
bool now;                       /* DUE_SOON has passed */
bool moved;                     /* the setter has run */
#define PASSED(d) ((d) == DUE_SOON && now)
#define EARLIER(a, b) ((a) < (b))
bool cmask;                     /* the caller blocks the cancel signal */
bool pend_c;                    /* the cancel signal is pending on the caller:
                                 * one bit (standard signals do not queue: one
                                 * sent while it is pending merges into it) */
bool insys_c;                   /* the caller waits in ppoll (signal unblocked) */
bool chand;                     /* cio__signal_seen != pc->seen: its handler ran
                                 * since the caller last recorded the count */
byte csec = NONE;               /* ghost: the op of the caller's parked section
                                 * (from its mask taken to its mask restored) */
/* The releases of the caller's word, one slot per party that may release
 * (each pays its own once it lets go of file->mu, before it releases
 * again).  With a stray, a release may still owe its signal when the
 * caller parks again and another party releases it. */
#define NSLOT 4
#define S_CANCELLER 0
#define S_CLOSER    1
#define S_SETTER    2
#define S_POSTER    3
#define SLOT(me) ((me) == CANCELLER -> S_CANCELLER : ((me) == CLOSER -> S_CLOSER : \
                  ((me) == SETTER -> S_SETTER : S_POSTER)))
byte rst[NSLOT];                /* 0, or 1: the word taken, GONE and the signal
                                 * owed; 2: one of the two paid (cpay) */
byte rop[NSLOT] = NONE;         /* ghost: the op it released */
bool rset[NSLOT];               /* ghost: the caller has settled it */
bool rex[NSLOT];                /* ghost: excused: a stray was taken in the
                                 * wait it ended (the known imprecision) */
byte crel = NONE;               /* ghost: the slot that released the caller's
                                 * current wait, if one did */
/* ghost: what the pending bit holds (either, both: merged) */
bool csent;                     /* the signal of a release not yet settled */
bool cfor;                      /* a foreign one: a stray, or the late signal
                                 * of an excused release */
bool wfor;                      /* ghost: the caller took a foreign signal in
                                 * its current wait (since its word said IN) */
/* (h): the caller does not wait in ppoll, its word IN (no release coming),
 * with a timeout later than its op's deadline */
#define NOT_LATE (!(insys_c && cword == P_IN && EARLIER(due, pdue)))
#endif

#if defined(W_LATE) || defined(W_LOST) || defined(W_KTIMER)
byte sig_for[NW] = NONE;        /* ghost: the op the pending signal was sent for */
#define SIG_FOR(w, k) sig_for[w] = k
#else
#define SIG_FOR(w, k) skip
#endif

/* A witness: an assertion that fails iff the scenario is reachable. */
#define WITNESS(cond) assert(!(cond))

/* ------------------------------------------------------------ the lock */

#define LOCK(me)   mu == FREE -> mu = me
/* a condvar wait: wake up, with the lock, once cond holds */
#define LOCK_WHEN(me, cond) (mu == FREE && (cond)) -> mu = me
#define UNLOCK(me) assert(mu == me); mu = FREE

/* ------------------------------------------------- op.c, under file->mu */

/* finish_locked: DONE.  Only a worker at step 6 finishes an op whose timer
 * is armed; it disarms that timer itself, after the unlock (disarm). */
inline finish(k, r) {
#ifdef KTIMER
    assert(!opkt[k]);
#endif
    res[k] = r;
    st[k] = DONE;
#ifndef KICK_AFTER_LEAVE
    wk[k] = NONE;
#endif
}

/* kick_locked: pthread_kill(op->worker).  Property (d): every kill happens
 * under file->mu, while the op is RUNNING, and its target thread is alive
 * and really inside THIS op. */
inline kick(k, me) {
    assert(mu == me);
    assert(st[k] == RUNNING);
    assert(wk[k] != NONE && alive[wk[k]] && in_op[wk[k]] == k);
    pend[wk[k]] = 1;
    SIG_FOR(wk[k], k);
    kicked[k] = 1
}

#ifdef CPARK
#define ON_WORKER(k) && !oncall[k]

/* caller_release_locked, its word found IN: RELEASED.  The party `me`
 * owes GONE and the signal (cpay), and the caller's current wait is
 * released by it (ghost). */
inline crelease(k, me) {
    assert(csec == k);          /* IN: the caller is in its section */
    cword = P_REL;
    crel = SLOT(me);
    assert(rst[crel] == 0);     /* it paid its last release */
    rst[crel] = 1;
    rop[crel] = k
}
#else
#define ON_WORKER(k)
#endif

/* cio__op_interrupt_locked: step 4.  The first reason wins. */
inline interrupt(k, r, me) {
    if
    :: reason[k] == 0 ->
        reason[k] = r;
        if
        :: st[k] == QUEUED ->
            /* cio__pool_try_unqueue: if pool.mu is free, still in the
             * queue, or handed to a worker that has not taken it?  Then
             * the canceller takes it back (the worker is idle again) and
             * finishes it itself.  Otherwise a worker has it, and step 2
             * will see the reason, or the caller has not submitted it yet
             * and looks once it has.  If pool.mu is busy (at any moment:
             * the model leaves it open), the caller is woken to take it
             * back itself (wait_done_locked). */
            if
            :: true ->
                if
                :: queue == k ->
                    queue = NONE;
#ifdef W_UNQUEUE
                    WITNESS(true);
#endif
                    finish(k, r)
                :: handoff == k ->
                    handoff = NONE;
                    idle_w = handw;
                    handw = NONE;
#ifdef W_TAKEBACK
                    WITNESS(true);
#endif
                    finish(k, r)
                :: else
                fi
#ifndef NO_OWED_WAKE
            :: owed[k] = 1
#endif
            fi
#ifdef KICK_AFTER_LEAVE
        /* mutant: op->worker is not cleared at step 6 and the canceller
         * signals whenever it is set, not only while RUNNING */
        :: st[k] != QUEUED && wk[k] != NONE -> kick(k, me)
#else
#ifdef CPARK
        /* 4c: the op waits on its caller's thread: take its word if it
         * says IN (caller_release_locked); GONE and the signal are owed
         * until this party lets go of file->mu (cpay).  If the word is
         * NONE the caller is between two waits and sees the reason before
         * the next; RELEASED or GONE: a signal is already coming. */
        :: st[k] == RUNNING && oncall[k] ->
            if
            :: cword == P_IN ->
#ifdef W_CRELEASE
                WITNESS(true);
#endif
                crelease(k, me)
            :: else
            fi
#endif
#ifdef PARK
        /* 4p: its worker is parked: take the word, finish the op and wake
         * the caller here; the worker touches the op no more.  Its signal
         * and GONE are owed until this party lets go of file->mu (PAY). */
        :: st[k] == RUNNING && park[wk[k]] == P_IN ->
#ifdef W_RELEASE
            WITNESS(true);
#endif
            park[wk[k]] = P_REL;
            nparked++;          /* hold_parked_locked */
            owe = wk[k];
            owe_by = me;
            in_op[wk[k]] = NONE;
#ifdef KTIMER
            if      /* the worker disarms its timer once GONE (released) */
            :: opkt[k] -> kleft[wk[k]] = k; opkt[k] = 0
            :: else
            fi;
#endif
            finish(k, r)
#endif
#ifdef KTIMER
        :: st[k] == RUNNING ->
            /* ktimer_repeat_locked (5a): a worker with a timer is signalled
             * again by it until step 6, and the caller is left asleep */
            if
            :: hastimer[wk[k]] ->
#ifndef NO_KTIMER_REPEAT
                kt[wk[k]] = KT_REPEAT;
                ktop[wk[k]] = k;
#endif
                opkt[k] = 1
            :: else
            fi;
            kick(k, me)
#else
        :: st[k] == RUNNING ON_WORKER(k) -> kick(k, me)
#endif
#endif
        :: else     /* NEW (the caller is trying it: it looks at the
                     * reason when it is back) or DONE: nothing to do */
        fi
    :: else         /* an earlier reason stands */
    fi
}

/* op.c pay: what a release owes, paid by its releaser with file->mu let
 * go (cio__op_defer_end), or at once under it by a party that does not
 * defer: the signal to the released worker, then GONE.  Property (d) for
 * it: its target is alive and waits for exactly this (P_REL). */
#ifdef PARK
inline pay(me) {
    atomic {
        if
        :: owe != NONE && owe_by == me ->
            assert(alive[owe] && park[owe] == P_REL);
            pend[owe] = 1;
            park[owe] = P_GONE;
            owe = NONE;
            owe_by = NONE
        :: else
        fi
    }
}
#endif

/* op.c pay, for a release of the caller's word (4c): what the releaser
 * owes once it has let go of file->mu (cio__op_defer_end, or at once):
 * GONE, then pthread_kill(op->caller) (-DCPARK_KILL_FIRST: the other
 * order), two steps.  (d'): GONE is its last touch of the op, and finds
 * the caller still in its parked section on that op, waiting for exactly
 * this (RELEASED); the kill only needs the thread, copied out under the
 * lock.  (i): the signal comes before the caller has settled this
 * release (so the settle takes it), unless the release is excused: a
 * stray was taken in the wait it ended.  A signal that comes while the
 * caller is in a parked section is pending (the mask blocks it); outside
 * one its handler runs on the application's thread, and the model drops
 * it. */
#ifdef CPARK
#define CGONE(s) \
    assert(csec == rop[s] && cword == P_REL); \
    cword = P_GONE
#ifdef W_CSTRAY_LATE
/* the accepted case: an excused release's signal comes after its caller
 * restored its mask */
#define W_CSTRAY_LATE_HERE(s) WITNESS(rset[s] && csec != rop[s])
#else
#define W_CSTRAY_LATE_HERE(s) skip
#endif
#ifdef W_CSTRAY_EXIT
/* ... or once the caller has returned from its last op: its thread may
 * have exited */
#define W_CSTRAY_EXIT_HERE(s) WITNESS(rset[s] && all_done)
#else
#define W_CSTRAY_EXIT_HERE(s) skip
#endif
#define CKILL(s) \
    assert(rex[s] || !rset[s]); \
    W_CSTRAY_LATE_HERE(s); \
    W_CSTRAY_EXIT_HERE(s); \
    if \
    :: csec != NONE -> \
        pend_c = 1; \
        if \
        :: rset[s] -> cfor = 1 \
        :: else -> csent = 1 \
        fi \
    :: else \
    fi
inline cpay(s) {
    if
    :: atomic { rst[s] == 1 ->
#ifndef CPARK_KILL_FIRST
        CGONE(s);
#else
        assert(csec == rop[s] && cword == P_REL);
        CKILL(s);
#endif
        rst[s] = 2 }
        atomic {
#ifndef CPARK_KILL_FIRST
            CKILL(s);
#else
            CGONE(s);
#endif
            rst[s] = 0;
            rop[s] = NONE;
            rset[s] = 0;
            rex[s] = 0
        }
    :: else
    fi
}
#endif

/* ------------------------------------------------ pool.c, under pool.mu */

/* cio__pool_submit: an idle worker, a new thread, or the queue */
inline submit(k) {
    if
    :: idle_w != NONE ->
        handoff = k;
        handw = idle_w;
        idle_w = NONE
    :: idle_w == NONE && threads < MAXT ->
        assert(nextw < NW);
        threads++;
        alive[nextw] = 1;
#ifdef KTIMER
        if      /* worker_main: cio__wtimer_open, which may fail */
        :: hastimer[nextw] = 1
        :: hastimer[nextw] = 0
        fi;
#endif
        run worker(nextw, k);
        nextw++
    :: else ->
        assert(queue == NONE);
        queue = k
    fi
}

/* The caller's own take-back (op.c wait_done_locked): it holds no file
 * lock while it takes pool.mu (cio__pool_unqueue), then finishes op k if
 * it got it back; else a worker has it, whose step 2 sees the reason. */
inline takeback(k, back) {
    atomic {
        if
#ifdef TAKEBACK_BLIND
        /* mutant: the caller finishes the op without asking the pool */
        :: back = 1
#else
        :: queue == k -> queue = NONE; back = 1
        :: handoff == k -> handoff = NONE; idle_w = handw; handw = NONE; back = 1
        :: else -> back = 0
#endif
        fi
    }
    atomic {
        LOCK(CALLER);
        if
        :: back ->
#ifdef W_CALLER_TAKEBACK
            WITNESS(true);
#endif
            assert(st[k] == QUEUED);
            finish(k, reason[k])
        :: else
        fi;
        UNLOCK(CALLER)
    }
}

/* ---------------------------------------------------------- the parties */

/* A worker thread: pool.c:worker_main / next_op, running
 * op.c:cio__op_execute (steps 2, 3, 6) and io.c:read_thunk. */
proctype worker(byte w; byte first) {
    byte k = first;
    byte r;
    bool rsn;
#ifdef PARK
    bool eintr, rel;
#endif
#ifdef KTIMER
    bool karmed;                /* its timer was armed for the op it left */
#endif
    do
    :: k != NONE ->
        /* step 2: enter.  Check the reason and publish, under file->mu. */
#ifdef CHECK_UNLOCKED
        /* mutant: the reason is read before the lock is taken */
        rsn = (reason[k] != 0);
        atomic {
            LOCK(WORKER(w));
#else
        atomic {
            LOCK(WORKER(w));
            rsn = (reason[k] != 0);
#endif
#ifdef KTIMER
            /* stale_reason: the deadline passed while the op waited for a
             * worker; ETIMEDOUT by compare-and-swap, and no syscall */
            if
            :: !rsn && passed[k] ->
#ifdef W_STALE
                WITNESS(true);
#endif
                reason[k] = R_TIMEDOUT;
                rsn = 1
            :: else
            fi;
#endif
            if
            :: rsn ->
#ifdef W_STEP2
                WITNESS(true);
#endif
                finish(k, reason[k])
            :: else ->
                st[k] = RUNNING;
                wk[k] = w;
                in_op[w] = k;
#ifdef KTIMER
                if      /* 2a: ktimer_arm_due_locked */
                :: hastimer[w] -> kt[w] = KT_DUE; ktop[w] = k; opkt[k] = 1
                :: else
                fi
#endif
            fi;
            UNLOCK(WORKER(w))
        }
        if
        :: rsn                  /* finished at step 2 */
#ifdef PARK
        :: else ->
            /* step 3p: io.c read_parked, no lock held */
#ifndef PARK_UNMASKED
            masked[w] = 1;      /* cio__park_mask */
#endif
            rel = 0;
            do
            :: park[w] = P_IN;  /* cio__op_park: from here op k may be released */
                /* user space: a pending signal stays pending (masked) */
                insys[w] = 1;   /* ppoll: the signal unblocked for the wait */
                if
                :: atomic { data[k] -> insys[w] = 0; eintr = 0 }     /* ready */
                :: atomic { pend[w] -> pend[w] = 0; insys[w] = 0; eintr = 1 }
                fi;
                atomic {        /* cio__op_unpark */
                    if
                    :: park[w] == P_IN -> park[w] = P_NONE
                    :: else -> rel = 1
                    fi
                }
                if
                :: rel -> break /* released: op k is not its any more */
                :: else
                fi;
                if
                :: eintr ->     /* io.c:interrupted() */
                    if
                    :: reason[k] != 0 -> r = reason[k]; break
#ifdef KTIMER
                    :: atomic { reason[k] == 0 && passed[k] -> reason[k] = R_TIMEDOUT };
                        r = R_TIMEDOUT; break
#endif
                    :: else     /* stray or late: wait again */
                    fi
                :: else -> r = RES_DATA; break  /* the try reads it */
                fi
            od;
            if
            :: rel ->           /* op.c released: wait for GONE */
#ifndef PARK_NO_GONE
                atomic { park[w] == P_GONE -> park[w] = P_NONE };
#else
                park[w] = P_NONE;
#endif
                atomic {        /* parked_left: out of its wait on the fd */
                    LOCK(WORKER(w));
                    nparked--;
                    UNLOCK(WORKER(w))
                }
#ifdef KTIMER
                atomic {        /* then disarm its timer, if it was armed for k */
                    if
                    :: kleft[w] == k -> kt[w] = KT_OFF; ktop[w] = NONE; kleft[w] = NONE
                    :: else
                    fi
                }
#endif
                masked[w] = 0   /* cio__park_unmask: a pending signal is late */
            :: else ->
            /* step 6: leave, under file->mu */
            atomic {
                LOCK(WORKER(w));
                in_op[w] = NONE;
#ifdef KTIMER
                karmed = opkt[k];
                opkt[k] = 0;
                if
                :: karmed -> kleft[w] = k
                :: else
                fi;
#endif
                finish(k, r);
                UNLOCK(WORKER(w))
            }
#ifdef KTIMER
            atomic {
                if
                :: karmed -> kt[w] = KT_OFF; ktop[w] = NONE; kleft[w] = NONE; karmed = 0
                :: else
                fi
            }
#endif
            masked[w] = 0       /* cio__park_unmask, after step 6 */
            fi
#else
        :: else ->
            /* step 3: the syscall, no lock held */
            do
            :: /* user space: the kernel process may run the handler for a
                * pending signal right here, and then it is lost */
                insys[w] = 1;   /* read(2) is entered and blocks */
                if
                :: atomic { data[k] ->  /* it returns data: a reason is ignored */
#ifdef W_DATA
                    WITNESS(reason[k] != 0);
#endif
                    insys[w] = 0;
                    r = RES_DATA };
                    break
#ifndef SA_RESTART
                :: atomic { pend[w] ->  /* EINTR: the signal interrupted it */
#ifdef W_LATE
                    WITNESS(sig_for[w] != NONE && sig_for[w] < k);
#endif
                    pend[w] = 0;
                    insys[w] = 0 }
#ifndef EINTR_IS_CANCEL
                    /* io.c:interrupted(): the op's own reason, lock-free */
                    if
                    :: reason[k] != 0 -> r = reason[k]; break
#ifdef KTIMER
                    /* cio__op_eintr_reason (3a): none set, but the deadline
                     * passed: ETIMEDOUT, by compare-and-swap */
                    :: atomic { reason[k] == 0 && passed[k] ->
#ifdef W_KTIMER
                        /* the signal was the worker's own timer's */
                        WITNESS(sig_for[w] == k);
#endif
                        reason[k] = R_TIMEDOUT };
                        r = R_TIMEDOUT; break
#endif
                    :: else             /* stray or late: retry */
                    fi
#else
                    /* mutant: EINTR is taken to mean "cancelled" */
                    r = R_CANCELED;
                    break
#endif
#else
                /* mutant: the handler is installed with SA_RESTART, so the
                 * kernel runs it and restarts read(2): never an EINTR */
                :: pend[w] -> pend[w] = 0
#endif
                fi
            od;
            /* step 6: leave, under file->mu */
            atomic {
                LOCK(WORKER(w));
                in_op[w] = NONE;
#ifdef KTIMER
                /* op.c cio__op_execute: the timer is disarmed after the
                 * unlock and the caller's wake-up (below) */
                karmed = opkt[k];
                opkt[k] = 0;
                if
                :: karmed -> kleft[w] = k
                :: else
                fi;
#endif
#ifdef ORPHAN
                if
                :: orphaned[k] ->       /* adopt: the result is the worker's */
                    st[k] = DONE;
                    wk[k] = NONE;
                    orph = NONE         /* the direction is free again */
                :: else -> finish(k, r)
                fi;
#else
                finish(k, r);
#endif
                UNLOCK(WORKER(w))
            }
#if defined(KTIMER) && !defined(KTIMER_NOT_DISARMED)
            /* then the worker disarms its own timer, with no lock held and
             * before it takes another op: until here the timer may still
             * signal it for the op it left (a late signal) */
            atomic {
                if
                :: karmed -> kt[w] = KT_OFF; ktop[w] = NONE; kleft[w] = NONE; karmed = 0
                :: else
                fi
            }
#endif
#endif /* PARK */
        fi;
        /* next_op, under pool.mu: the queue first, else go idle */
        atomic {
#ifdef KTIMER
            kleft[w] = NONE;    /* the op it left is behind it now */
#endif
            if
            :: queue != NONE -> k = queue; queue = NONE
            :: else -> k = NONE; idle_w = w
            fi
        }
        if
        :: k != NONE
        :: else ->
end_idle:   if
            :: atomic { handoff != NONE && handw == w -> k = handoff; handoff = NONE; handw = NONE }
            :: atomic { handoff == NONE && idle_w == w ->
                /* IDLE_NS passed: retire.  A pending signal dies with it. */
#ifdef W_RETIRE
                WITNESS(true);
#endif
                idle_w = NONE;
                threads--;
                alive[w] = 0;
                pend[w] = 0 }
            fi
        fi
    :: else -> break
    od
}

#ifdef CPARK
/* 2b: the reason, a passed deadline (then ETIMEDOUT by compare-and-swap:
 * the first reason wins), or a deadline that moved since 2a.  One step:
 * its reads commute with each other, and a stop between the look and the
 * compare-and-swap ends as a stop before the look (the caller leaves with
 * that reason and finds its word taken). */
#ifdef W_CSELF
#define W_CSELF_HERE WITNESS(true)
#else
#define W_CSELF_HERE skip
#endif
#define CPARK_LOOK(k) \
    atomic { \
        if \
        :: reason[k] != 0 -> crsn = 1 \
        :: reason[k] == 0 && PASSED(due) -> W_CSELF_HERE; reason[k] = R_TIMEDOUT; crsn = 1 \
        :: reason[k] == 0 && !PASSED(due) && due != pdue -> cchg = 1 \
        :: else \
        fi \
    }

/* The caller takes the pending signal (its handler in ppoll, or
 * sigtimedwait / sigwaitinfo in the settle): one bit, whatever merged
 * into it.  Ghost: a foreign one taken in this wait. */
#define CTAKE \
    if \
    :: cfor -> wfor = 1 \
    :: else \
    fi; \
    pend_c = 0; \
    csent = 0; \
    cfor = 0

/* platform/park_ppoll.c cio__park_caller_settle, after GONE: if the
 * handler ran since pc->seen was recorded, take a pending signal if any
 * (sigtimedwait, zero timeout); else wait until one is pending and take
 * it (sigwaitinfo: the release's signal comes after GONE).  Then record
 * the count again.  Ghost: the release is settled, and excused if a
 * foreign signal was taken in this wait. */
inline csettle() {
    atomic {
        if
        :: chand -> if
                    :: pend_c -> CTAKE
                    :: else
                    fi
#ifndef CPARK_NO_SETTLE
        :: !chand && pend_c -> CTAKE
#else
        /* mutant: it does not wait for a signal its handler did not see:
         * it takes a pending one, if any, and goes on */
        :: !chand -> if
                     :: pend_c -> CTAKE
                     :: else
                     fi
#endif
        fi;
        chand = 0;
        if
        :: rst[crel] != 0 ->    /* its signal may still be to come */
            rset[crel] = 1;
            rex[crel] = wfor
        :: else
        fi;
        crel = NONE;
        wfor = 0
    }
}

/* cio__op_caller_unpark: take the word back (IN -> NONE); if a release
 * took it, wait until its releaser says GONE (wait_gone), store NONE,
 * and settle.  Either way the wait is over (ghost: wfor). */
inline cunpark() {
    if
    :: atomic { cword == P_IN -> cword = P_NONE; wfor = 0 }
    :: atomic { cword != P_IN -> skip }
#ifndef CPARK_NO_GONE
        atomic { cword == P_GONE -> cword = P_NONE };
#else
        /* mutant: it goes on without waiting for GONE */
        cword = P_NONE;
#endif
        csettle()
    fi
}

/* pc->seen = cio__signal_seen: where the caller records the count: at
 * cio__park_caller_enter, at the end of each settle, and as each wait
 * begins, with IN (the signal is blocked from there to ppoll, so for a
 * wait that reaches ppoll this is the same as just before it).
 * -DCPARK_SEEN_AT_PPOLL: just before ppoll instead, after its early
 * return for a passed deadline; a wait that a stop releases before ppoll
 * then compares with a count recorded before an earlier wait. */
#ifndef CPARK_SEEN_AT_PPOLL
#define SEEN_AT_IN chand = 0
#define SEEN_AT_PPOLL skip
#else
#define SEEN_AT_IN skip
#define SEEN_AT_PPOLL chand = 0
#endif
#endif

/* The caller: io.c:cio_read -> file.c:cio__file_do (try_locked, then
 * op.c:cio__op_run_locked), one op after another on the same direction. */
active proctype caller() {
    byte k = 0;
    bool tried, got, over, sub, tookback, back;
#ifdef CPARK
    bool crsn, cchg, cready;
    byte r;
    /* the file's read deadline before the first op (the setter may move
     * it once) */
    if
    :: due = DUE_SOON
    :: due = DUE_NEVER
    fi;
#endif
    do
    :: k < NOPS ->
        /* the environment decides whether data ever arrives for op k */
        if
        :: data[k] = 1
        :: data[k] = 0
        fi;
        /* begin (plan9/note.c), under proc->mu only: a note pending
         * refuses the op; else the op is published for the poster. */
        atomic {
            pmu == FREE ->
            if
            :: nq > 0 ->
                res[k] = RES_REFUSED;
                noted[k] = 1;
                over = 1
            :: else ->
                pub = k;
                armed = 0;
                over = 0
            fi
        }
        if
        :: over -> goto op_over
        :: else
        fi;
        /* step 1: publish.  cio__op_prepare_locked (state NEW, reason 0),
         * arm_locked (a note queued since begin interrupts it now),
         * enter_locked, link_locked (the op is now in flight: d->ops). */
        atomic {
#ifdef ORPHAN
            /* enter_locked: a direction busy with an orphan is waited for */
            LOCK_WHEN(CALLER, orph == NONE || closing);
#else
            LOCK(CALLER);
#endif
            inside = 1;
            armed = 1;
#ifndef NOTE_UNARMED
            if
            :: nq > 0 -> noted[k] = 1; interrupt(k, R_INTR, CALLER)
            :: else
            fi;
#endif
            if
            :: closing ->               /* enter_locked: -EBADF at once */
                res[k] = RES_CLOSED;
                st[k] = DONE;           /* over (a note's reason may be set) */
                armed = 2;
                inside = 0;
                tried = 0;
                over = 1
            :: reason[k] != 0 ->        /* enter_locked: a note, at once */
                res[k] = reason[k];
                st[k] = DONE;
                armed = 2;
                inside = 0;
                tried = 0;
                over = 1
            :: else ->
                cur = k;
                over = 0;
                if
                :: tried = 1            /* try_locked: it lets go of the lock */
#ifndef CPARK
                :: tried = 0;           /* no try (d->no_nowait): the pool */
                    st[k] = QUEUED;     /* cio__op_run_locked, which */
                    sub = 1             /* submits it after the unlock */
#endif
                fi
            fi;
            UNLOCK(CALLER)
        }
        /* the fast path: the read tried without blocking on the caller's
         * thread, no lock held; a cancel meanwhile only sets the reason
         * (the op is NEW: nobody to signal).  Back under the lock: */
        if
        :: tried ->
            atomic {
                LOCK(CALLER);
                if
                :: data[k] -> got = 1   /* the data is there already */
                :: got = 0              /* EAGAIN (or not there yet) */
                fi;
                if
                :: got || reason[k] != 0 ->
                    /* settled on the caller's thread.  (The C op stays NEW:
                     * DONE here says "over" to property (b).) */
#ifdef W_TRY
                    WITNESS(!got && reason[k] != 0);
#endif
                    res[k] = (got -> RES_DATA : reason[k]);
                    st[k] = DONE;
                    cur = NONE;
                    armed = 2;
                    inside = 0;
                    over = 1
                :: else ->
#ifdef CPARK
                    /* file.c run_locked, 3c: cio__op_caller_begin_locked
                     * (RUNNING, on_caller, word NONE, park_due none).  The
                     * caller then lets go of the lock and blocks the
                     * signal (cio__park_caller_enter, which records the
                     * handler's count), which this step does too:
                     * nothing can signal it before its word says IN,
                     * which it stores after. */
                    st[k] = RUNNING;
                    oncall[k] = 1;
                    pdue = DUE_NEVER;
                    cmask = 1;
                    chand = 0;
                    csec = k
#else
                    st[k] = QUEUED;     /* cio__op_run_locked */
                    sub = 1
#endif
                fi;
                UNLOCK(CALLER)
            }
        :: else
        fi;
#ifdef CPARK
        /* Step 3c, io.c run_on_caller: the loop of cio__op_caller_park
         * (2a, 2b) and the wait (2c), with no lock held.  r is the result
         * (a reason, data), or NONE: hand the op to a worker after all. */
        if
        :: oncall[k] ->
            do
            :: /* 2a, 2b: park_due = op->due (one step: nobody else writes
                * park_due, and a setter that reads the old one finds the
                * word NONE and does nothing), then IN, then the look */
#ifndef CPARK_CHECK_FIRST
                pdue = due;
                atomic { cword = P_IN; SEEN_AT_IN };
                CPARK_LOOK(k);
#else
                /* mutant: the look comes before the word says IN */
                pdue = due;
                CPARK_LOOK(k);
                atomic { cword = P_IN; SEEN_AT_IN };
#endif
                if
                :: crsn || cchg ->
                    cunpark();
                    if
                    :: crsn -> r = reason[k]; break
                    :: else
                    fi
                :: else ->
                    /* 2c: cio__park_caller_wait: park_due passed, return
                     * at once; else record the handler's count and
                     * ppoll(fd, park_due, the signal unblocked) */
                    if
                    :: atomic { PASSED(pdue) -> skip }
                    :: atomic { SEEN_AT_PPOLL; insys_c = 1; assert(NOT_LATE) };
                        if
                        :: atomic { data[k] -> insys_c = 0; cready = 1 }    /* ready */
                        :: atomic { pend_c -> CTAKE; chand = 1; insys_c = 0 } /* EINTR:
                                                  * the handler ran, in the wait */
                        :: atomic { PASSED(pdue) -> insys_c = 0 }          /* timed out */
                        fi
                    fi;
                    cunpark();                  /* 2d */
                    if
                    :: cready ->                /* 2e: the try */
                        cready = 0;
#ifndef CPARK_TO_WORKER
                        r = RES_DATA; break     /* data first, even with a reason */
#else
                        if
                        :: r = RES_DATA; break
                        :: r = NONE; break      /* ready, but the try keeps finding
                                                 * nothing (UNREADY_FREE rounds):
                                                 * CIO__TO_WORKER */
                        fi
#endif
                    :: else                     /* 2b looks again */
                    fi
                fi
            od;
            crsn = 0;
            cchg = 0;
            /* cio__park_caller_leave: it restores its mask.  (i): no
             * signal of a release it has not settled is pending on it
             * then; with (i) in cpay, none of a release not excused comes
             * later.  A foreign one still pending (a stray, or an excused
             * release's late signal) is the application's (the handler
             * runs, or it stays pending): the model drops it. */
            atomic {
                assert(!csent);
                pend_c = 0;
                cfor = 0;
                chand = 0;
                cmask = 0;
                csec = NONE
            }
            /* back under file->mu: cio__op_caller_end_locked; done, or
             * (CIO__TO_WORKER) to the pool after all (cio__op_run_locked) */
            atomic {
                LOCK(CALLER);
                oncall[k] = 0;
                if
                :: r != NONE ->
                    finish(k, r);
                    cur = NONE;         /* unlink_locked, --f->ops */
                    armed = 2;
                    inside = 0;
                    over = 1
                :: else ->
                    st[k] = QUEUED;
                    sub = 1
                fi;
                r = 0;
                UNLOCK(CALLER)
            }
        :: else
        fi;
#endif
        /* cio__op_run_locked: the submit, with file->mu let go (pool.mu
         * only); then, back under the lock, wait_done_locked's first look:
         * a reason that came meanwhile, on an op still QUEUED, makes the
         * caller take it back itself */
        if
        :: sub ->
            sub = 0;
            tookback = 0;
#ifdef SUBMIT_NO_LOOK
            atomic { submit(k) }
#else
            atomic { submit(k) }
            atomic {
                LOCK(CALLER);
                if
                :: st[k] == QUEUED && reason[k] != 0 -> tookback = 1
                :: else
                fi;
                UNLOCK(CALLER)
            }
            if
            :: tookback -> takeback(k, back)
            :: else
            fi
#endif
        :: else
        fi;
        if
        :: over                 /* refused, or settled by the try */
        :: else ->
            /* step 5: wait_done_locked.  Each turn is one wake-up with the
             * lock: a broadcast (DONE), or the back-off timer running out,
             * which is armed only while the op is RUNNING with a reason and
             * was signalled once (op->signals > 0; else it waits without a
             * deadline).  How long it sleeps is left open: it re-signals at
             * any moment, as often as it likes. */
            do
            /* woken by a canceller that found pool.mu busy: the take-back
             * is the caller's (once an op) */
            :: atomic {
                LOCK_WHEN(CALLER, st[k] == QUEUED && owed[k] && !tookback);
                tookback = 1;
                UNLOCK(CALLER)
               }
               takeback(k, back)
            :: atomic {
                LOCK_WHEN(CALLER, st[k] == DONE
#ifndef NO_RESIGNAL
                          || (st[k] == RUNNING && reason[k] != 0 && kicked[k]
#ifdef KTIMER
                              && !opkt[k]       /* the worker's timer repeats it */
#endif
                             )
#endif
                         );
                if
                :: st[k] == DONE ->
                    cur = NONE;         /* unlink_locked, --f->ops */
                    armed = 2;
                    inside = 0;
                    UNLOCK(CALLER);
                    break
                :: else ->
                    kick(k, CALLER);    /* the re-signal */
                    UNLOCK(CALLER)
                fi
               }
#ifdef ORPHAN
            /* the grace ran out (any moment after the reason): the caller
             * returns the reason, unlinks the op and leaves it to the worker
             * (cio__orphan_keep_locked) */
            :: atomic {
                LOCK_WHEN(CALLER, st[k] == RUNNING && reason[k] != 0);
                orphaned[k] = 1;
                res[k] = reason[k];
                orph = k;
                cur = NONE;
                armed = 2;
                inside = 0;
                UNLOCK(CALLER);
                break
               }
#endif
            od
        fi;
op_over:
        /* end (plan9/note.c), under proc->mu: forget the op; if a note
         * ended it (EINTR) or refused it, deliver every note pending.  A
         * note that came too late for op k (its data, or another reason,
         * came first) stays pending and refuses the next op (rule 17:
         * handlers run only in an op that fails with EINTR). */
        atomic {
            pmu == FREE ->
            pub = NONE;
            /* (e'): an op that fails with EINTR has its note to deliver */
            assert(!(res[k] == R_INTR || res[k] == RES_REFUSED) || nq > 0);
            if
            :: res[k] == R_INTR || res[k] == RES_REFUSED -> nq = 0
            :: else
            fi
        }
        /* property (c): an op fails with a cancel only if a cancel was
         * requested for THAT op, and with that reason; otherwise it
         * returns data, or was refused at step 1 because of the close, or
         * at begin because of a note. */
        assert(res[k] != 0);
        if
        :: IS_CANCEL(res[k]) -> assert(reason[k] == res[k])
        :: else -> assert((res[k] == RES_DATA && data[k]) || res[k] == RES_CLOSED ||
                          res[k] == RES_REFUSED)
        fi;
        /* property (e): a note that came while op k was in it interrupted
         * op k (rule 16), and none is left over to refuse the next op */
        assert(!hit[k] || noted[k]);
        assert(res[k] != RES_REFUSED || noted[k]);
        k++
    :: else -> break
    od;
    all_done = 1
}

/* The timer thread at a deadline (ETIMEDOUT, file.c:fire/expire_locked) or
 * an application thread in cio_cancel (ECANCELED, file.c:cancel_locked):
 * at any moment, stop whatever op is in flight. */
active proctype canceller() {
    byte n = 0;
    byte r;
    do
    :: n < NCANCEL ->
        if
        :: r = R_TIMEDOUT
        :: r = R_CANCELED
        fi;
        atomic {
            LOCK(CANCELLER);
            if
            :: cur != NONE -> interrupt(cur, r, CANCELLER)
            :: else
            fi;
            UNLOCK(CANCELLER)
        }
#ifdef PARK
        pay(CANCELLER);         /* cio__op_defer_end, after the unlock */
#endif
#ifdef CPARK
        cpay(S_CANCELLER);      /* cio__op_defer_end, after the unlock */
#endif
        n++
    :: break
    od
}

#ifdef KTIMER
/* Time, for the kernel timers: the deadline of the op in flight passes (at
 * most once per op, or never again: the loop may end), and then the timer
 * thread fires (file.c:fire, expire_locked(by_timer)): it leaves a RUNNING
 * op with its worker's timer armed to that timer (cio__op_expires_itself_
 * locked) and stops any other.  (A queued op's caller, or the caller of an
 * op whose worker has no timer, may be the one that stops it, in
 * wait_done_locked: the same step 4 by another party.)  The canceller's
 * ETIMEDOUT is then a deadline moved into the past (rule 3). */
active proctype clock() {
    byte k = NONE;
    do
    :: atomic { cur != NONE && !passed[cur] -> k = cur; passed[k] = 1 }
        atomic {
            LOCK(TIMER);
            if
            :: cur == k && !(st[k] == RUNNING && opkt[k]) -> interrupt(k, R_TIMEDOUT, TIMER)
            :: else     /* left to the worker's timer, or over */
            fi;
            UNLOCK(TIMER);
            k = NONE
        }
#ifdef PARK
        ; pay(TIMER)
#endif
    :: break
    od
}
#endif

/* cio_close (file.c:release): closing, EBADF to the op in flight, then wait
 * until no caller is inside an op.  It comes at some moment, so every op
 * that gets no data is stopped by someone: the model has no legitimate
 * "blocks forever", and any stuck end state is a real deadlock. */
active proctype closer() {
    atomic {
        LOCK(CLOSER);
        closing = 1;
        if
        :: cur != NONE -> interrupt(cur, R_BADF, CLOSER)
        :: else
        fi;
        UNLOCK(CLOSER)
    }
#ifdef PARK
    pay(CLOSER);    /* (the C close pays under the lock: a pay later is no better) */
#endif
#ifdef CPARK
    cpay(S_CLOSER);
    atomic {
        LOCK_WHEN(CLOSER, !inside);
        /* (g) for the caller: it is out of its wait on the fd, and no
         * release of its word is under way */
        assert(!insys_c && cword == P_NONE);
        UNLOCK(CLOSER)
    }
#elif defined(PARK)
#define OUT_OF_FD(w) (park[w] == P_NONE && !insys[w])
    atomic {
        LOCK_WHEN(CLOSER, !inside
#ifndef PARK_CLOSE_EARLY
                  && nparked == 0
#endif
                 );
        /* (g) then no worker waits on the fd any more: close(2) lets go
         * of the open file (poll holds it while it waits) */
        assert(OUT_OF_FD(0)
#if NW > 1
               && OUT_OF_FD(1)
#endif
#if NW > 2
               && OUT_OF_FD(2)
#endif
#if NW > 3
               && OUT_OF_FD(3)
#endif
              );
        UNLOCK(CLOSER)
    }
#else
    atomic { LOCK_WHEN(CLOSER, !inside); UNLOCK(CLOSER) }
#endif
}

/* cio_postnote (plan9/note.c) from another thread, or the caller's alarm
 * firing: queue under proc->mu, and, still holding it, interrupt the op the
 * caller is in under that op's lock if the op is prepared (armed) and not
 * over.  Before that the caller's arm step sees the note; after it (the op
 * over) the note refuses the caller's next op. */
#ifdef NOTES
active proctype poster() {
    byte n = 0;
    do
    :: n < NNOTES ->
        atomic { pmu == FREE -> pmu = POSTER; nq++ }
        if
        :: pub != NONE ->
            atomic {
                LOCK(POSTER);
                if
                :: armed == 0 -> hit[pub] = 1     /* arm_locked must see it */
                :: armed == 1 && st[pub] != DONE ->
#ifdef W_NOTE
                    WITNESS(st[pub] == RUNNING);
#endif
                    hit[pub] = 1;
                    noted[pub] = 1;
                    interrupt(pub, R_INTR, POSTER)
                :: else                           /* over (DONE, or disarmed): it
                                                   * refuses the next op */
                fi;
                UNLOCK(POSTER)
            }
#ifdef PARK
            ; pay(POSTER)
#endif
#ifdef CPARK
            ; cpay(S_POSTER)
#endif
        :: else                                   /* the next op is refused */
        fi;
        atomic { assert(pmu == POSTER); pmu = FREE };
        n++
    :: break
    od
}
#endif

/* The kernel delivers a pending signal to a thread in user space: the
 * handler (signal.c:on_cancel_signal) runs and the signal is gone.  Inside
 * read(2) the worker itself takes it, as EINTR. */
#ifdef PARK
#define UNMASKED(w) && !masked[w]
#else
#define UNMASKED(w)
#endif
#define DELIVER(w) :: atomic { pend[w] && !insys[w] UNMASKED(w) -> \
                        pend[w] = 0; DELIVERED(w) }
#ifdef W_LOST
/* a signal sent for the op the thread is in, lost before the syscall */
#define DELIVERED(w) WITNESS(in_op[w] != NONE && sig_for[w] == in_op[w] && reason[in_op[w]] != 0)
#else
#define DELIVERED(w) skip
#endif

active proctype kernel() {
end:
    do
    DELIVER(0)
#if NW > 1
    DELIVER(1)
#endif
#if NW > 2
    DELIVER(2)
#endif
#if NW > 3
    DELIVER(3)
#endif
    od
}

#ifdef KTIMER
/* A worker's kernel timer: once it fires (its op's deadline passed, or a
 * cancel armed it to repeat) it signals its worker, with no lock, whenever
 * it likes, again and again.  Property (d) for it: it fires only while its
 * worker is inside the op it was armed for (step 6 disarms it). */
#define KFIRE(w) :: atomic { alive[w] && (kt[w] == KT_REPEAT || (kt[w] == KT_DUE && passed[ktop[w]])) -> \
                        assert(in_op[w] == ktop[w] || kleft[w] == ktop[w]); KREPEAT(w); KLEFT(w); pend[w] = 1; SIG_FOR(w, ktop[w]) }
#ifdef W_KREPEAT
/* the repeat reaches a worker blocked in the syscall with nothing pending:
 * the cancel's signal was lost before the syscall, and no caller re-signals */
#define KREPEAT(w) WITNESS(kt[w] == KT_REPEAT && insys[w] && !pend[w])
#else
#define KREPEAT(w) skip
#endif
#ifdef W_KLEFT
/* the timer fires after its worker left the op (step 6), before the worker
 * disarmed it: the signal is a late one */
#define KLEFT(w) WITNESS(kleft[w] != NONE && in_op[w] == NONE)
#else
#define KLEFT(w) skip
#endif

active proctype ktimer() {
end:
    do
    KFIRE(0)
#if NW > 1
    KFIRE(1)
#endif
#if NW > 2
    KFIRE(2)
#endif
#if NW > 3
    KFIRE(3)
#endif
    od
}
#endif

/* Another process sends the signal to the whole process: it lands on a
 * thread that does not block it, i.e. a live worker (or an application
 * thread, where it does not matter to the protocol). */
#define STRAY(w) :: atomic { n < NSTRAY && alive[w] -> pend[w] = 1; SIG_FOR(w, NONE); n++ }

active proctype stray() {
    byte n = 0;
end:
    do
    STRAY(0)
#if NW > 1
    STRAY(1)
#endif
#if NW > 2
    STRAY(2)
#endif
#if NW > 3
    STRAY(3)
#endif
#ifdef CPARK
    /* or on the caller, in its wait: the only place it does not block it
     * (the wait then fails with EINTR) */
    :: atomic { n < NSTRAY && insys_c -> pend_c = 1; cfor = 1; n++ }
#endif
    :: n < NSTRAY -> n = NSTRAY     /* or it never comes */
    od
}

#ifdef CPARK
/* Time and cio_set_read_deadline (file.c set_locked, op.c
 * cio__op_set_due_locked): at most once, the setter moves the deadline
 * (SOON -> NEVER: later; NEVER -> SOON: earlier), and SOON may pass, in
 * either order, or neither.  A deadline moved into the past stops the op
 * (rule 3: expire_locked).  One moved earlier than the park_due of a
 * caller parked with no reason takes the word as a stop does, with no
 * reason, and signals it once the lock is let go: a nudge; the caller
 * wakes, finds no reason and parks again with the new due.  The timer
 * thread leaves an op on its caller to that caller
 * (cio__op_expires_itself_locked); it is not in the model, and its stops
 * of other ops are the canceller's ETIMEDOUT, as in the real model. */
active proctype timeline() {
    due != 0;                   /* the caller chose the first deadline */
    do
    :: !moved ->
        atomic {
            LOCK(SETTER);
            moved = 1;
            due = (due == DUE_SOON -> DUE_NEVER : DUE_SOON);
            if
            :: cur != NONE && PASSED(due) -> interrupt(cur, R_TIMEDOUT, SETTER)
            :: else
            fi;
            if
            :: cur != NONE && st[cur] == RUNNING && oncall[cur] && reason[cur] == 0 &&
               EARLIER(due, pdue) && cword == P_IN ->
#ifndef CPARK_NO_NUDGE
#ifdef W_CNUDGE
                WITNESS(true);
#endif
                crelease(cur, SETTER)
#else
                skip    /* mutant: no nudge */
#endif
            :: else
            fi;
            assert(NOT_LATE);   /* (h) */
            UNLOCK(SETTER)
        }
        cpay(S_SETTER)
    :: !now -> now = 1          /* DUE_SOON passes */
    :: break
    od
}
#endif

/* ---------------------------------------------------------- properties */

/* (b) every cancel ends its op: once op k has a reason, op k becomes DONE.
 * `cancels` says it for every op at once; done<k> for op k alone. */
#define ENDS(k) ((reason[k] != 0) -> <> (st[k] == DONE))
#if NOPS == 1
ltl cancels { [] ENDS(0) }
#elif NOPS == 2
ltl cancels { [] (ENDS(0) && ENDS(1)) }
#elif NOPS == 3
ltl cancels { [] (ENDS(0) && ENDS(1) && ENDS(2)) }
#else
ltl cancels { [] (ENDS(0) && ENDS(1) && ENDS(2) && ENDS(3)) }
#endif
ltl done0 { [] ENDS(0) }
#if NOPS > 1
ltl done1 { [] ENDS(1) }
#endif
#if NOPS > 2
ltl done2 { [] ENDS(2) }
#endif
#if NOPS > 3
ltl done3 { [] ENDS(3) }
#endif
/* and the caller always gets through all its ops */
ltl alldone { <> all_done }
/* (f) every note ends the op it interrupts or refuses the next: a note
 * pending is delivered (by the end of the op it came in, or of the next op,
 * refused), unless the caller starts no op any more */
ltl notes { [] ((nq > 0) -> <> (nq == 0 || all_done)) }
