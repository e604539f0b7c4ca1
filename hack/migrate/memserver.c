/* The workload of the migration tests and benchmark, built static so that it runs in the
 * busybox root filesystem: it dirties MIB mebibytes of anonymous memory (every page written,
 * with data that does not compress to zero pages), then answers on TCP port PORT: every byte
 * a client sends comes back, so the client sees each gap in service.
 *   memserver PORT MIB
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: memserver PORT MIB\n");
        return 2;
    }
    int port = atoi(argv[1]);
    size_t mib = strtoul(argv[2], NULL, 10);
    signal(SIGTERM, quit);
    size_t len = mib << 20;
    if (len) {
        unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        /* Every page differs from a zero page and from the others. */
        for (size_t i = 0; i < len; i += 64)
            *(unsigned long *)(mem + i) = i * 2654435761UL + 1;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4)) {
        perror("bind/listen");
        return 1;
    }
    /* Ready: the memory is dirty and the port open. */
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char buf[4096];
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0)
            if (write(c, buf, n) != n)
                break;
        close(c);
    }
}
