#ifndef FLOWMETER_CRDKAFKA_SHIM_H
#define FLOWMETER_CRDKAFKA_SHIM_H
// rdkafka_mock.h must come after rdkafka.h.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sys/prctl.h>

/// Names the calling thread as the OS shows it (`top -H`, /proc/PID/task/TID/comm): at most 15 bytes are kept.
/// (prctl is variadic, so Swift cannot call it directly.)
static inline void flowmeter_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}
#endif
