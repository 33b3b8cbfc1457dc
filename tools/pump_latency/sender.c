/*
 * Sends <count> WM_COPYDATA messages of 64 bytes to the window titled <title>, one every 150 to
 * 200 ms (the receiver is idle between them), each with a plain SendMessageTimeoutW, and prints
 * each round trip in microseconds, one per line, then "done".
 * Usage: sender.exe <title> <count>
 * Build: x86_64-w64-mingw32-gcc -O2 -municode -o sender.exe sender.c -luser32
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int wmain(int argc, wchar_t **argv) {
  if (argc < 3) return 2;
  HWND hwnd = FindWindowW(NULL, argv[1]);
  if (!hwnd) {
    fprintf(stderr, "no window\n");
    return 1;
  }
  int count = _wtoi(argv[2]);
  LARGE_INTEGER freq, t0, t1;
  QueryPerformanceFrequency(&freq);
  char payload[64] = {0};
  COPYDATASTRUCT cds = {7, sizeof payload, payload};
  srand(GetCurrentProcessId());
  for (int i = 0; i < count; i++) {
    Sleep(150 + rand() % 51);
    DWORD_PTR result = 0;
    QueryPerformanceCounter(&t0);
    LRESULT ok = SendMessageTimeoutW(hwnd, WM_COPYDATA, 0, (LPARAM)&cds, SMTO_NORMAL, 5000, &result);
    QueryPerformanceCounter(&t1);
    if (!ok || result != sizeof payload) {
      fprintf(stderr, "send %d failed (result %lu)\n", i, (unsigned long)result);
      return 1;
    }
    printf("%.1f\n", (double)(t1.QuadPart - t0.QuadPart) * 1e6 / (double)freq.QuadPart);
    fflush(stdout);
  }
  printf("done\n");
  return 0;
}
