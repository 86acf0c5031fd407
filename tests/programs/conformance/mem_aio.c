/* A Linux AIO context (io_setup: its ring mapped into the process, the context's id its address),
 * used once before the checkpoint.  After restore: the same id works: a read submitted with
 * io_submit completes through io_getevents with the file's bytes, the ring is at the same place,
 * and io_destroy takes it down. */
#include "cf.h"
#include <linux/aio_abi.h>

static long io_setup(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long io_submit(aio_context_t ctx, long n, struct iocb **cbs) { return syscall(SYS_io_submit, ctx, n, cbs); }
static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev)
{
    return syscall(SYS_io_getevents, ctx, min, max, ev, NULL);
}

static int read_once(aio_context_t ctx, int fd, char *buf, size_t n, uint64_t tag)
{
    struct iocb cb = {.aio_data = tag, .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = (uint32_t)fd,
                      .aio_buf = (uint64_t)(uintptr_t)buf, .aio_nbytes = n};
    struct iocb *cbs[1] = {&cb};
    struct io_event ev;
    if (io_submit(ctx, 1, cbs) != 1 || io_getevents(ctx, 1, 1, &ev) != 1) return -1;
    return ev.data == tag ? (int)ev.res : -2;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("data"), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || write(fd, "asynchronous", 12) != 12) return 3;
    aio_context_t ctx = 0;
    char buf[16] = {0};
    if (io_setup(8, &ctx) || read_once(ctx, fd, buf, 5, 1) != 5) return 3;
    char line[512];
    snprintf(line, sizeof line, "%s", cf_maps_line("/[aio]"));
    char where[32];
    snprintf(where, sizeof where, "%llx-", (unsigned long long)ctx);
    sc_ready();
    sc_wait_go();
    memset(buf, 0, sizeof buf);
    int got = read_once(ctx, fd, buf, 12, 2);
    sc_check(got == 12 && memcmp(buf, "asynchronous", 12) == 0, "a read through the context", "%d %.12s", got, buf);
    cf_same(line, cf_maps_line("/[aio]"), "its ring's mapping");
    sc_check(strstr(cf_maps_line(where), "/[aio]") != NULL, "the ring is at the context's id", "%s", where);
    sc_check(syscall(SYS_io_destroy, ctx) == 0, "io_destroy", "errno %d", errno);
    return sc_done();
}
