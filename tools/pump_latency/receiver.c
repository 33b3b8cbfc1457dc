/*
 * The floor of an idle window's wake-up: a hidden top-level window whose thread blocks in
 * GetMessageW; its window procedure answers each WM_COPYDATA with the payload's length.
 * Usage: receiver.exe <title>. Prints "ready", runs until killed.
 * Build: x86_64-w64-mingw32-gcc -O2 -municode -o receiver.exe receiver.c -luser32
 */
#include <windows.h>
#include <stdio.h>

static LRESULT CALLBACK proc(HWND hwnd, UINT msg, WPARAM wParam, LPARAM lParam) {
  if (msg == WM_COPYDATA) return (LRESULT)((COPYDATASTRUCT *)lParam)->cbData;
  return DefWindowProcW(hwnd, msg, wParam, lParam);
}

int wmain(int argc, wchar_t **argv) {
  if (argc < 2) return 2;
  WNDCLASSEXW cls = {sizeof cls};
  cls.lpfnWndProc = proc;
  cls.hInstance = GetModuleHandleW(NULL);
  cls.lpszClassName = L"winipc.pump_latency.receiver";
  if (!RegisterClassExW(&cls)) return 1;
  HWND hwnd = CreateWindowExW(WS_EX_TOOLWINDOW, cls.lpszClassName, argv[1], WS_POPUP, 0, 0, 0, 0,
                              NULL, NULL, cls.hInstance, NULL);
  if (!hwnd) return 1;
  printf("ready\n");
  fflush(stdout);
  MSG msg;
  while (GetMessageW(&msg, NULL, 0, 0) > 0) {
    TranslateMessage(&msg);
    DispatchMessageW(&msg);
  }
  return 0;
}
