// smke's stat checker: answers whether every path of a no-op stat list still
// has the stat values the list records, with stat(2) on a few threads. It is
// the no-op fast path's costliest step (src/runtime/stat-list.ts): a 10,000-
// stage project has 30,000 paths, and Node's statSync costs 7-10 us a path
// (a Stats object, Dates) where stat(2) here costs 3, and runs on two cores.
// Without this binary smke does the same check in Node.
//
// Usage: stat-check LIST STORE_DIR ID_HEX
//   LIST       the stat list (format below, written by src/runtime/stat-list.ts)
//   STORE_DIR  the directory relative paths are resolved in
//   ID_HEX     the id the list must carry (16 hex digits): a list replaced
//              since its snapshot was read is not the one the snapshot means
// Exit status: 0 every path unchanged, 1 something changed (or is gone),
// 2 the list is not a valid list with that id, or bad usage.
//
// LIST, little-endian:
//   32-byte header: "SMKESTL1", 8-byte id, u32 count, u32 path bytes, 8 zero bytes
//   count records of six i64: flags (1 directory, 2 relative to STORE_DIR),
//     path offset, size, inode, mtime ns, ctime ns
//   path bytes: NUL-terminated paths, at the records' offsets
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER 32
#define RECORD 48

struct record {
  int64_t flags, offset, size, ino, mtime_ns, ctime_ns;
};

static const struct record *records;
static const char *paths;
static uint32_t count;
static int store_fd = -1;
static int threads;
static volatile int changed;

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int unchanged(const struct record *r) {
  const char *p = paths + r->offset;
  struct stat st;
  int rc = (r->flags & 2) ? (store_fd < 0 ? -1 : fstatat(store_fd, p, &st, 0)) : stat(p, &st);
  if (rc != 0) return 0;
  if (ns(st.st_mtim) != r->mtime_ns || ns(st.st_ctim) != r->ctime_ns) return 0;
  if (r->flags & 1) return S_ISDIR(st.st_mode);
  return S_ISREG(st.st_mode) && (int64_t)st.st_size == r->size && (int64_t)st.st_ino == r->ino;
}

static void *check(void *arg) {
  // Interleaved, so both threads walk the same directories at about the same time.
  for (uint32_t i = (uint32_t)(uintptr_t)arg; i < count && !changed; i += (uint32_t)threads)
    if (!unchanged(&records[i])) changed = 1;
  return NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 4 || strlen(argv[3]) != 16) return 2;
  unsigned char id[8];
  for (int i = 0; i < 8; i++) {
    int hi = hexval(argv[3][2 * i]), lo = hexval(argv[3][2 * i + 1]);
    if (hi < 0 || lo < 0) return 2;
    id[i] = (unsigned char)(hi * 16 + lo);
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 2;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < HEADER) return 2;
  size_t size = (size_t)st.st_size;
  const unsigned char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return 2;
  if (memcmp(map, "SMKESTL1", 8) != 0 || memcmp(map + 8, id, 8) != 0) return 2;
  uint32_t path_bytes;
  memcpy(&count, map + 16, 4);
  memcpy(&path_bytes, map + 20, 4);
  if ((uint64_t)HEADER + (uint64_t)count * RECORD + path_bytes != size) return 2;
  records = (const struct record *)(map + HEADER);
  paths = (const char *)(map + HEADER + (size_t)count * RECORD);
  // Every path must end inside the list: the last byte is a NUL, and no offset points past it.
  if (count > 0 && (path_bytes == 0 || paths[path_bytes - 1] != '\0')) return 2;
  for (uint32_t i = 0; i < count; i++)
    if (records[i].offset < 0 || records[i].offset >= (int64_t)path_bytes || (records[i].flags & ~(int64_t)3) != 0) return 2;

  store_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  threads = cpus < 1 ? 1 : cpus > 4 ? 4 : (int)cpus;
  if (count < 2000) threads = 1; // a thread costs more than a few hundred stats
  pthread_t t[4];
  int running[4] = {0};
  for (int i = 1; i < threads; i++) running[i] = pthread_create(&t[i], NULL, check, (void *)(uintptr_t)i) == 0;
  check((void *)0);
  // A share whose thread could not be started is checked here.
  for (int i = 1; i < threads; i++) {
    if (running[i]) pthread_join(t[i], NULL);
    else check((void *)(uintptr_t)i);
  }
  return changed ? 1 : 0;
}
