/*
 * Both native sides of tools/dde_latency (built and run by run.ts):
 *
 *   dde_latency.exe server <service> <topic> <item>
 *     A DDEML server whose thread blocks in GetMessageW (the floor). XTYP_CONNECT is accepted for
 *     <topic>; XTYP_REQUEST of <item> in CF_TEXT is answered with the number of requests served
 *     so far ("1", "2", ...). Prints "ready <pid>", answers each line of its stdin with
 *     "cpu <ms>" (its CPU time so far, from another thread), and serves until its stdin ends.
 *
 *   dde_latency.exe client <service> <topic> <item> <idle count> <warm-up> <hot count>
 *     Connects and sends XTYP_REQUEST transactions (CF_TEXT, synchronous, 5 s timeout):
 *     <idle count> of them 150 to 200 ms apart (pumping messages meanwhile), printing
 *     "idle <µs>" for each, then <warm-up> untimed and <hot count> back to back, printing
 *     "hot <µs>" for each. A round trip is DdeClientTransaction alone, timed with
 *     QueryPerformanceCounter. Each answer must be the next number; "mismatch <n>" counts those
 *     that were not. Wine's DDEML server follows each answer with a WM_DDE_ACK that Windows does
 *     not send; the client takes it after each transaction (outside the timing) when the first
 *     one came with it, and "stray-ack <n>" counts them. Ends with "done"; "error <text>" on a
 *     failure.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -municode -o dde_latency.exe dde_latency.c -luser32
 */
#include <windows.h>
#include <ddeml.h>
#include <stdio.h>
#include <stdlib.h>

static DWORD instance;
static HSZ topicName, itemName;
static unsigned served;

static HDDEDATA CALLBACK serverCallback(UINT type, UINT format, HCONV conv, HSZ hsz1, HSZ hsz2,
                                        HDDEDATA data, ULONG_PTR data1, ULONG_PTR data2) {
  (void)conv, (void)data, (void)data1, (void)data2;
  switch (type) {
  case XTYP_CONNECT:
    return (HDDEDATA)(ULONG_PTR)(DdeCmpStringHandles(hsz1, topicName) == 0);
  case XTYP_REQUEST: {
    if (format != CF_TEXT || DdeCmpStringHandles(hsz2, itemName) != 0) return NULL;
    char text[16];
    int length = snprintf(text, sizeof text, "%u", ++served);
    return DdeCreateDataHandle(instance, (BYTE *)text, length + 1, 0, hsz2, CF_TEXT, 0);
  }
  default:
    return NULL;
  }
}

static HDDEDATA CALLBACK clientCallback(UINT type, UINT format, HCONV conv, HSZ hsz1, HSZ hsz2,
                                        HDDEDATA data, ULONG_PTR data1, ULONG_PTR data2) {
  (void)type, (void)format, (void)conv, (void)hsz1, (void)hsz2, (void)data, (void)data1,
      (void)data2;
  return NULL;
}

static double processCpuMs(void) {
  FILETIME creation, exit, kernel, user;
  if (!GetProcessTimes(GetCurrentProcess(), &creation, &exit, &kernel, &user)) return -1;
  ULARGE_INTEGER k = {{kernel.dwLowDateTime, kernel.dwHighDateTime}};
  ULARGE_INTEGER u = {{user.dwLowDateTime, user.dwHighDateTime}};
  return (double)(k.QuadPart + u.QuadPart) / 10000.0;
}

/* Answers each "cpu" line of stdin with this process's CPU time; ends the GetMessageW loop when
 * stdin ends. */
static DWORD WINAPI watchStdin(LPVOID thread) {
  char buffer[64];
  DWORD read;
  while (ReadFile(GetStdHandle(STD_INPUT_HANDLE), buffer, sizeof buffer, &read, NULL) && read > 0) {
    for (DWORD i = 0; i < read; i++) {
      if (buffer[i] != '\n') continue;
      printf("cpu %.1f\n", processCpuMs());
      fflush(stdout);
    }
  }
  PostThreadMessageW((DWORD)(ULONG_PTR)thread, WM_QUIT, 0, 0);
  return 0;
}

static int serve(const wchar_t *service, const wchar_t *topic, const wchar_t *item) {
  UINT flags = APPCLASS_STANDARD | CBF_FAIL_POKES | CBF_FAIL_EXECUTES | CBF_FAIL_ADVISES |
               CBF_SKIP_ALLNOTIFICATIONS;
  if (DdeInitializeW(&instance, serverCallback, flags, 0) != DMLERR_NO_ERROR) {
    printf("error DdeInitializeW\n");
    return 1;
  }
  HSZ serviceName = DdeCreateStringHandleW(instance, service, CP_WINUNICODE);
  topicName = DdeCreateStringHandleW(instance, topic, CP_WINUNICODE);
  itemName = DdeCreateStringHandleW(instance, item, CP_WINUNICODE);
  if (!DdeNameService(instance, serviceName, NULL, DNS_REGISTER)) {
    printf("error DdeNameService %u\n", DdeGetLastError(instance));
    return 1;
  }
  MSG msg;
  PeekMessageW(&msg, NULL, 0, 0, PM_NOREMOVE); /* the thread's queue exists before the watcher */
  CreateThread(NULL, 0, watchStdin, (LPVOID)(ULONG_PTR)GetCurrentThreadId(), 0, NULL);
  printf("ready %lu\n", GetCurrentProcessId());
  fflush(stdout);
  while (GetMessageW(&msg, NULL, 0, 0) > 0) {
    TranslateMessage(&msg);
    DispatchMessageW(&msg);
  }
  DdeNameService(instance, serviceName, NULL, DNS_UNREGISTER);
  DdeUninitialize(instance);
  return 0;
}

static LARGE_INTEGER frequency;

static double micros(void) {
  LARGE_INTEGER now;
  QueryPerformanceCounter(&now);
  return (double)now.QuadPart * 1e6 / (double)frequency.QuadPart;
}

/* Waits `ms` while handling this thread's messages (DDEML's windows stay responsive). */
static void pumpFor(DWORD ms) {
  DWORD start = GetTickCount();
  for (;;) {
    DWORD spent = GetTickCount() - start;
    if (spent >= ms) return;
    MsgWaitForMultipleObjects(0, NULL, FALSE, ms - spent, QS_ALLINPUT);
    MSG msg;
    while (PeekMessageW(&msg, NULL, 0, 0, PM_REMOVE)) DispatchMessageW(&msg);
  }
}

static HSZ serviceHsz, topicHsz, itemHsz;
static HCONV conversation;
static unsigned expected, mismatches, strayAcks;
/* -1: not known yet; 1: the server follows each WM_DDE_DATA with a WM_DDE_ACK; 0: it does not. */
static int acksData = -1;

/*
 * Takes the WM_DDE_ACK that Wine's DDEML server posts after the WM_DDE_DATA of each answered
 * request, waiting up to `ms` for it. Left in the queue, it ends the next synchronous transaction
 * at once, as a negative answer (DMLERR_NOTPROCESSED), and that transaction's own data is then
 * taken as the answer of the one after it. Returns whether one came.
 */
static int takeStrayAck(DWORD ms) {
  DWORD start = GetTickCount();
  MSG msg;
  for (;;) {
    if (PeekMessageW(&msg, NULL, WM_DDE_ACK, WM_DDE_ACK, PM_REMOVE)) {
      DispatchMessageW(&msg);
      strayAcks++;
      return 1;
    }
    DWORD spent = GetTickCount() - start;
    if (spent >= ms) return 0;
    MsgWaitForMultipleObjects(0, NULL, FALSE, ms - spent, QS_POSTMESSAGE);
  }
}

/* One timed request; returns its round trip in µs, or a negative number on failure. */
static double request(void) {
  double start = micros();
  HDDEDATA data =
      DdeClientTransaction(NULL, 0, conversation, itemHsz, CF_TEXT, XTYP_REQUEST, 5000, NULL);
  double elapsed = micros() - start;
  if (!data) {
    printf("error DdeClientTransaction %u\n", DdeGetLastError(instance));
    return -1;
  }
  char text[32] = {0};
  DdeGetData(data, (BYTE *)text, sizeof text - 1, 0);
  DdeFreeDataHandle(data);
  if (strtoul(text, NULL, 10) != ++expected) {
    mismatches++;
    expected = strtoul(text, NULL, 10);
  }
  if (acksData < 0) acksData = takeStrayAck(500);
  else if (acksData) takeStrayAck(5000);
  return elapsed;
}

static int client(wchar_t **argv) {
  int idleCount = _wtoi(argv[5]), warmUp = _wtoi(argv[6]), hotCount = _wtoi(argv[7]);
  QueryPerformanceFrequency(&frequency);
  srand(GetCurrentProcessId());

  if (DdeInitializeW(&instance, clientCallback, APPCMD_CLIENTONLY, 0) != DMLERR_NO_ERROR) {
    printf("error DdeInitializeW\n");
    return 1;
  }
  serviceHsz = DdeCreateStringHandleW(instance, argv[2], CP_WINUNICODE);
  topicHsz = DdeCreateStringHandleW(instance, argv[3], CP_WINUNICODE);
  itemHsz = DdeCreateStringHandleW(instance, argv[4], CP_WINUNICODE);
  conversation = DdeConnect(instance, serviceHsz, topicHsz, NULL);
  if (!conversation) {
    printf("error DdeConnect %u\n", DdeGetLastError(instance));
    return 1;
  }

  for (int i = 0; i < idleCount; i++) {
    pumpFor(150 + rand() % 51);
    double us = request();
    if (us < 0) return 1;
    printf("idle %.1f\n", us);
  }
  fflush(stdout);
  for (int i = 0; i < warmUp; i++) {
    if (request() < 0) return 1;
  }
  for (int i = 0; i < hotCount; i++) {
    double us = request();
    if (us < 0) return 1;
    printf("hot %.1f\n", us);
  }
  printf("mismatch %u\n", mismatches);
  printf("stray-ack %u\n", strayAcks);
  DdeDisconnect(conversation);
  DdeUninitialize(instance);
  printf("done\n");
  return 0;
}

int wmain(int argc, wchar_t **argv) {
  if (argc == 5 && wcscmp(argv[1], L"server") == 0) return serve(argv[2], argv[3], argv[4]);
  if (argc == 8 && wcscmp(argv[1], L"client") == 0) return client(argv);
  fprintf(stderr, "usage: dde_latency.exe server <service> <topic> <item>\n"
                  "       dde_latency.exe client <service> <topic> <item> <idle count> <warm-up> "
                  "<hot count>\n");
  return 2;
}
