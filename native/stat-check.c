// smke's stat checker: answers whether every path of a no-op stat list still
// has the stat values the list records, with stat(2) on a few threads. It is
// the no-op fast path's costliest step (src/runtime/stat-list.ts): a 10,000-
// stage project has 30,000 paths, and Node's statSync costs 7-10 us a path
// (a Stats object, Dates) where stat(2) here costs 3, and runs on two cores.
// Without this binary smke does the same check in Node.
//
// Usage: stat-check LIST STORE_DIR [--spare-core]
//   LIST          the stat list (format below, written by src/runtime/stat-list.ts)
//   STORE_DIR     the directory relative paths are resolved in
//   --spare-core  one thread fewer than the cores: the caller started this
//                 check early and is still busy loading (src/runtime/early-check.ts)
// Prints the list's id (16 hex digits and a newline) once the list is read
// and valid: the caller compares it with the id its snapshot names, so that a
// list replaced since is not taken for the snapshot's (it starts this program
// before reading the snapshot, to stat while it reads).
// Exit status: 0 every path unchanged, 1 something changed (or is gone),
// 2 the list is not a valid list (nothing printed), or bad usage.
//
// LIST, little-endian:
//   32-byte header: "SMKESTL2", 8-byte id, u32 count, u32 path bytes, 8 zero bytes
//   count records of eight f64, every one an integer below 2^53: flags (1
//     directory, 2 relative to STORE_DIR), path offset, size, inode, mtime
//     seconds, mtime nanoseconds, ctime seconds, ctime nanoseconds
//     (doubles, so that smke's check in Node reads them without BigInt and
//     compares them with a plain stat's mtimeMs as Node computes it)
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
#define RECORD 64

struct record {
  double flags, offset, size, ino, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

static const struct record *records;
static const char *paths;
static uint32_t count;
static int store_fd = -1;
static int threads;
static volatile int changed;

static int unchanged(const struct record *r) {
  const char *p = paths + (size_t)r->offset;
  int flags = (int)r->flags;
  struct stat st;
  int rc = (flags & 2) ? (store_fd < 0 ? -1 : fstatat(store_fd, p, &st, 0)) : stat(p, &st);
  if (rc != 0) return 0;
  // Integers below 2^53 convert to double exactly: these compare as the integers they are.
  if ((double)st.st_mtim.tv_sec != r->mtime_sec || (double)st.st_mtim.tv_nsec != r->mtime_nsec) return 0;
  if ((double)st.st_ctim.tv_sec != r->ctime_sec || (double)st.st_ctim.tv_nsec != r->ctime_nsec) return 0;
  if (flags & 1) return S_ISDIR(st.st_mode);
  return S_ISREG(st.st_mode) && (double)st.st_size == r->size && (double)st.st_ino == r->ino;
}

static void *check(void *arg) {
  // Interleaved, so both threads walk the same directories at about the same time.
  for (uint32_t i = (uint32_t)(uintptr_t)arg; i < count && !changed; i += (uint32_t)threads)
    if (!unchanged(&records[i])) changed = 1;
  return NULL;
}

int main(int argc, char **argv) {
  int spare = argc == 4 && strcmp(argv[3], "--spare-core") == 0;
  if (argc != 3 && !spare) return 2;
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 2;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < HEADER) return 2;
  size_t size = (size_t)st.st_size;
  const unsigned char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return 2;
  if (memcmp(map, "SMKESTL2", 8) != 0) return 2;
  uint32_t path_bytes;
  memcpy(&count, map + 16, 4);
  memcpy(&path_bytes, map + 20, 4);
  if ((uint64_t)HEADER + (uint64_t)count * RECORD + path_bytes != size) return 2;
  records = (const struct record *)(map + HEADER);
  paths = (const char *)(map + HEADER + (size_t)count * RECORD);
  // Every path must end inside the list: the last byte is a NUL, and no offset points past it.
  if (count > 0 && (path_bytes == 0 || paths[path_bytes - 1] != '\0')) return 2;
  for (uint32_t i = 0; i < count; i++) {
    const struct record *r = &records[i];
    if (!(r->offset >= 0 && r->offset < (double)path_bytes && r->offset == (double)(uint32_t)r->offset)) return 2;
    if (!(r->flags == 0 || r->flags == 1 || r->flags == 2 || r->flags == 3)) return 2;
  }

  char id[18];
  for (int i = 0; i < 8; i++) snprintf(id + 2 * i, 3, "%02x", map[8 + i]);
  id[16] = '\n';
  if (write(1, id, 17) != 17) return 2;

  store_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (spare) cpus--;
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
