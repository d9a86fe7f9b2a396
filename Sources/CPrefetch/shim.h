#ifndef FLOWMETER_CPREFETCH_SHIM_H
#define FLOWMETER_CPREFETCH_SHIM_H
/// Asks the CPU to bring the cache line holding `address` closer, without waiting for it: a hint that cannot fault
/// (any address may be given) and changes no result. Swift has no spelling for it; the function is inlined.
static inline void flowmeter_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}
#endif
