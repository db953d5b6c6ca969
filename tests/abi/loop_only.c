/* Uses only the loop: linked against libnetkit.so, it must need nothing but libc (and libm)
 * at run time; check_deps.py looks at what the dynamic loader brings in. */
#include <stdio.h>

#include <netkit/loop.h>

static void on_timer(nk_loop *loop, nk_timer *t)
{
    ++*(int *)t->data;
}

int main(void)
{
    nk_loop *loop;
    if (nk_loop_new(NULL, &loop) < 0)
        return 1;
    int fired = 0;
    nk_timer t;
    nk_timer_init(&t, on_timer, &fired);
    nk_timer_start(loop, &t, 1, 0);
    nk_loop_run(loop, NK_RUN_DEFAULT);
    nk_loop_free(loop);
    printf("loop_only: timer fired %d time(s)\n", fired);
    return fired == 1 ? 0 : 1;
}
