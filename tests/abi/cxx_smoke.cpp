// A C++ program uses libnetkit through <netkit/netkit.h>: every declaration must have C linkage
// (extern "C" in the headers) for this to link, and the headers must be valid C++.
#include <netkit/netkit.h>

#include <cstdio>
#include <cstring>

namespace {

struct state {
    int fired = 0;
};

void on_timer(nk_loop *, nk_timer *t)
{
    static_cast<state *>(t->data)->fired++;
}

int fail(const char *what, int err)
{
    std::fprintf(stderr, "cxx_smoke: %s: %s\n", what, nk_strerror(err));
    return 1;
}

} // namespace

int main()
{
    nk_loop *loop = nullptr;
    int err = nk_loop_new(nullptr, &loop);
    if (err < 0)
        return fail("nk_loop_new", err);
    state s;
    nk_timer t;
    nk_timer_init(&t, on_timer, &s);
    err = nk_timer_start(loop, &t, 1, 0);
    if (err < 0)
        return fail("nk_timer_start", err);
    err = nk_loop_run(loop, NK_RUN_DEFAULT); // returns once the one-shot timer has fired
    if (err < 0)
        return fail("nk_loop_run", err);
    if (s.fired != 1) {
        std::fprintf(stderr, "cxx_smoke: timer fired %d times, expected 1\n", s.fired);
        return 1;
    }
    err = nk_loop_free(loop);
    if (err < 0)
        return fail("nk_loop_free", err);
    std::printf("cxx_smoke: ok (timer fired once, loop freed)\n");
    return 0;
}
