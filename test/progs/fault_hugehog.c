/* fault_hugehog: takes hugepages away from everyone else, for the exhaustion
 * tests. Maps and touches 2 MiB hugetlb pages one by one until the kernel
 * refuses (or N are held), prints "held N\n", then holds them until stdin
 * reaches EOF.
 *
 *   fault_hugehog [--pages N] [--timeout S] */
#include "common.h"

#include <sys/mman.h>

int main(int argc, char **argv) {
  prog_name = "fault_hugehog";
  unsigned long max = (unsigned long)-1;
  unsigned timeout = 120;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--pages")) max = strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--timeout")) timeout = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else die("usage: fault_hugehog [--pages N] [--timeout S]");
  }
  watchdog(timeout);
  const size_t page = 2u << 20;
  unsigned long held = 0;
  while (held < max) {
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED) break;
    memset(p, 0x5a, page); /* fault it in: HugePages_Free drops now */
    held++;
  }
  printf("held %lu\n", held);
  fflush(stdout);
  char b[64];
  while (read(0, b, sizeof b) > 0) {
  }
  return 0;
}
