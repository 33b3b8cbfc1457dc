/*
 * The native floor of the shared-memory channel: two processes ping-pong through one named
 * mapping by spinning on two counters, each round trip carrying `size` bytes each way, timed
 * with one QueryPerformanceCounter reading per round trip (as `winipc bench` times the channel).
 *
 * Usage: spin.exe serve <name> <size>
 *        spin.exe ping <name> <size> <seconds>   prints {"p50_us": x, "p99_us": y, "n": n}
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  volatile LONG64 ping;
  char pad1[56];
  volatile LONG64 pong;
  char pad2[56];
  unsigned char there[1 << 16];
  unsigned char back[1 << 16];
} Shared;

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int wmain(int argc, wchar_t **argv) {
  if (argc < 4) return 2;
  int size = _wtoi(argv[3]);
  if (size < 1 || size > (1 << 16)) return 2;
  HANDLE map = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, sizeof(Shared), argv[2]);
  if (!map) return 3;
  Shared *s = (Shared *)MapViewOfFile(map, FILE_MAP_ALL_ACCESS, 0, 0, sizeof(Shared));
  if (!s) return 3;
  if (wcscmp(argv[1], L"serve") == 0) {
    printf("ready\n");
    fflush(stdout);
    LONG64 seen = 0;
    for (;;) {
      LONG64 now;
      while ((now = s->ping) == seen) YieldProcessor();
      if (now < 0) return 0;
      seen = now;
      memcpy(s->back, s->there, size);
      MemoryBarrier();
      s->pong = now;
    }
  }
  if (argc < 5) return 2;
  double seconds = _wtof(argv[4]);
  LARGE_INTEGER freq, t;
  QueryPerformanceFrequency(&freq);
  unsigned char *payload = malloc(size), *reply = malloc(size);
  memset(payload, 7, size);
  size_t cap = 20000000, n = 0;
  double *samples = malloc(cap * sizeof(double));
  LONG64 i = 0;
  QueryPerformanceCounter(&t);
  LONGLONG start = t.QuadPart, warm = start + (LONGLONG)(freq.QuadPart * seconds * 0.2);
  LONGLONG until = warm + (LONGLONG)(freq.QuadPart * seconds * 0.8), prev = start;
  for (;;) {
    memcpy(s->there, payload, size);
    MemoryBarrier();
    s->ping = ++i;
    while (s->pong != i) YieldProcessor();
    memcpy(reply, s->back, size);
    QueryPerformanceCounter(&t);
    if (t.QuadPart > warm && n < cap) samples[n++] = (double)(t.QuadPart - prev) * 1e6 / freq.QuadPart;
    prev = t.QuadPart;
    if (t.QuadPart > until) break;
  }
  s->ping = -1;
  qsort(samples, n, sizeof(double), compare);
  printf("{\"p50_us\": %.3f, \"p99_us\": %.3f, \"n\": %zu}\n", samples[n / 2], samples[n * 99 / 100], n);
  return 0;
}
