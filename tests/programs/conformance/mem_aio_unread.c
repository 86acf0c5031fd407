/* A Linux AIO context whose ring holds completed events not yet read, wrapped round its end:
 * many reads submitted and reaped one by one until the head is just short of the ring's end, then
 * three reads, of which one is reaped.  After restore: io_getevents yields the two others, in
 * order, with their tags and results (their bytes in the buffers); the ring's head and tail are
 * as they were; a new read through the context completes; io_destroy takes it down. */
#include "cf.h"
#include <linux/aio_abi.h>

struct ring { unsigned id, nr, head, tail, magic, compat, incompat, header; };

static long io_setup(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long io_submit(aio_context_t ctx, long n, struct iocb **cbs) { return syscall(SYS_io_submit, ctx, n, cbs); }
static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev)
{
    return syscall(SYS_io_getevents, ctx, min, max, ev, NULL);
}

static struct iocb cbs[3];

static int submit(aio_context_t ctx, int i, int fd, char *buf, size_t n, uint64_t tag)
{
    cbs[i] = (struct iocb){.aio_data = tag, .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = (uint32_t)fd,
                           .aio_buf = (uint64_t)(uintptr_t)buf, .aio_nbytes = n};
    struct iocb *p = &cbs[i];
    return io_submit(ctx, 1, &p) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("data"), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || write(fd, "asynchronous", 12) != 12) return 3;
    aio_context_t ctx = 0;
    if (io_setup(8, &ctx)) return 3;
    volatile struct ring *r = (struct ring *)(uintptr_t)ctx;
    unsigned nr = r->nr;
    static char b0[16], b1[16], b2[16], b3[16];
    struct io_event ev[4];
    while (r->head != nr - 2) {                       /* one by one to just short of the end */
        if (submit(ctx, 0, fd, b0, 1, 9) || io_getevents(ctx, 1, 1, ev) != 1) return 3;
    }
    if (submit(ctx, 0, fd, b1, 4, 101) || submit(ctx, 1, fd, b2, 8, 102) || submit(ctx, 2, fd, b3, 12, 103)) return 3;
    while (r->tail != 1) {}                            /* (reads of a regular file complete at once) */
    if (io_getevents(ctx, 1, 1, ev) != 1 || ev[0].data != 101) return 3;
    unsigned head = r->head, tail = r->tail;
    sc_ready();
    sc_wait_go();
    sc_check(r->head == head && r->tail == tail && head == nr - 1 && tail == 1, "the ring's head and tail",
             "%u %u, were %u %u (nr %u)", r->head, r->tail, head, tail, nr);
    memset(ev, 0, sizeof ev);
    long got = io_getevents(ctx, 2, 4, ev);
    sc_check(got == 2 && ev[0].data == 102 && ev[0].res == 8 && ev[1].data == 103 && ev[1].res == 12 &&
             ev[0].obj == (uint64_t)(uintptr_t)&cbs[1] && ev[1].obj == (uint64_t)(uintptr_t)&cbs[2],
             "the two unread events, in order, with their results", "got %ld: %llu/%lld %llu/%lld", got,
             (unsigned long long)ev[0].data, (long long)ev[0].res, (unsigned long long)ev[1].data,
             (long long)ev[1].res);
    sc_check(memcmp(b2, "asynchro", 8) == 0 && memcmp(b3, "asynchronous", 12) == 0, "their bytes", "%.8s %.12s",
             b2, b3);
    memset(b0, 0, sizeof b0);
    sc_check(submit(ctx, 0, fd, b0, 12, 7) == 0 && io_getevents(ctx, 1, 1, ev) == 1 && ev[0].data == 7 &&
             ev[0].res == 12 && memcmp(b0, "asynchronous", 12) == 0, "a new read through the context", "%s", "");
    sc_check(syscall(SYS_io_destroy, ctx) == 0, "io_destroy", "errno %d", errno);
    return sc_done();
}
