/*
 * replay.c - runs saved inputs through a fuzz target without libFuzzer.
 *
 * Linked with one tests/fuzz/fuzz_<parser>.c in normal builds, so ctest
 * replays tests/fuzz/corpus/<parser>/ (seeds and every crasher ever fixed)
 * under the same compiler flags and sanitizers as the rest. Each argument
 * is a directory (every regular file in it, dot files skipped) or a file.
 * A missing or empty directory is not an error: exit 0. A crash is the
 * target's to report (abort, sanitizer); an unreadable file exits 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Inputs are small seeds; anything bigger is not a corpus file. */
#define REPLAY_MAX_BYTES (64u * 1024 * 1024)
#define REPLAY_PATH_MAX  4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; 0 or -errno. */
static int replay_file(const char *path)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd, err = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        err = -errno;
        goto out_close;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_BYTES) {
        err = -EFBIG;
        goto out_close;
    }
    /* Exactly size bytes (at least 1 to allocate), so ASan sees overreads. */
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        err = -ENOMEM;
        goto out_close;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? -errno : -EIO;
            goto out_free;
        }
        got += (size_t)n;
    }
    LLVMFuzzerTestOneInput(buf, got);
out_free:
    free(buf);
out_close:
    close(fd);
    return err;
}

/* Runs every regular file of dir; counts into *runs. 0 or -errno. */
static int replay_dir(const char *dir, unsigned *runs)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    int err = 0;

    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((de = readdir(d))) {
        char path[REPLAY_PATH_MAX];
        struct stat st;
        int n, r;

        if (de->d_name[0] == '.')
            continue;
        n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        r = replay_file(path);
        if (r < 0) {
            fprintf(stderr, "replay: cannot read '%s': %s\n", path,
                    strerror(-r));
            err = r;
            continue;
        }
        (*runs)++;
    }
    closedir(d);
    return err;
}

int main(int argc, char **argv)
{
    unsigned runs = 0;
    int status = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        int r;

        if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) {
            r = replay_file(argv[i]);
            if (r == 0)
                runs++;
        } else {
            r = replay_dir(argv[i], &runs);
        }
        if (r < 0) {
            fprintf(stderr, "replay: cannot read '%s': %s\n", argv[i],
                    strerror(-r));
            status = 1;
        }
    }
    printf("replay: %u inputs\n", runs);
    return status;
}
