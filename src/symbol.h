/*
 * symbol.h - naming a task's function for people: its symbol when the dynamic linker knows it
 * (an exported function, or any function of an executable linked with -rdynamic), else its
 * address.
 */
#ifndef TP_SYMBOL_H
#define TP_SYMBOL_H

#include <stddef.h>

/* Writes the name of the function at `fn` into buf (len bytes, at least 2) and returns buf. */
const char *tp__symbol_name(const void *fn, char *buf, size_t len);

#endif /* TP_SYMBOL_H */
