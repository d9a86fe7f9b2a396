#ifndef FLOWMETER_CLIBPQ_SHIM_H
#define FLOWMETER_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
