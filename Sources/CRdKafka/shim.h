#ifndef FLOWMETER_CRDKAFKA_SHIM_H
#define FLOWMETER_CRDKAFKA_SHIM_H
// rdkafka_mock.h must come after rdkafka.h.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif
