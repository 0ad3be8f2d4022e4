/* The bare reference for `start all`: n posix_spawn of `sleep 100000`, each
 * in its own process group with /dev/null as stdio, as fast as possible.
 * Prints: wall ns of the loop, CPU ns of this process during it, CPU ns of
 * all children once they sleep (their work before and after exec). Used by
 * bench/spawn_cpu.py. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long cpu_ns(pid_t pid) {
    char path[64];
    long long ns = 0;
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lld", &ns) != 1) ns = 0;
        fclose(f);
    }
    return ns;
}

static int sleeping(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: spawn_loop N /path/to/sleep\n");
        return 2;
    }
    int n = atoi(argv[1]);
    pid_t *pids = calloc(n, sizeof *pids);
    posix_spawnattr_t a;
    posix_spawnattr_init(&a);
    posix_spawnattr_setflags(&a, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&a, 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *args[] = {"sleep", "100000", NULL};
    struct timespec t0, t1;
    long long self0 = cpu_ns(getpid());
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        if (posix_spawn(&pids[i], argv[2], &fa, &a, args, environ) != 0) {
            perror("posix_spawn");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long self1 = cpu_ns(getpid());
    long long children = 0;
    for (int i = 0; i < n; i++) {
        while (!sleeping(pids[i])) usleep(1000);
        children += cpu_ns(pids[i]);
    }
    printf("%lld %lld %lld\n",
           (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
           self1 - self0, children);
    for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);
    return 0;
}
