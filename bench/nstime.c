/* Time one command in the benchmark guest.
 *   nstime CMD [ARG...]
 * Runs CMD with its stdout on /dev/null (its messages would otherwise go to
 * the serial console, slow under TCG), prints the elapsed CLOCK_MONOTONIC
 * nanoseconds from just before the fork to just after the wait, and exits
 * with CMD's status. Built static: no loader work of its own in the way. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long long t0, t1;
    int status;
    pid_t pid;

    if (argc < 2) {
        fprintf(stderr, "usage: nstime CMD [ARG...]\n");
        return 2;
    }
    t0 = now_ns();
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        perror("nstime");
        return 2;
    }
    t1 = now_ns();
    printf("%lld\n", t1 - t0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
