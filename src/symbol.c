/*
 * symbol.c - naming a task's function: dladdr() (glibc's, in libc since 2.34), or where it lies.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "symbol.h"

const char *tp__symbol_name(const void *fn, char *buf, size_t len)
{
	Dl_info info;

	if (fn == NULL || dladdr(fn, &info) == 0) {
		snprintf(buf, len, "%#lx", (unsigned long)(uintptr_t)fn);
	} else if (info.dli_sname != NULL && info.dli_saddr == fn) {
		snprintf(buf, len, "%s", info.dli_sname);
	} else {
		/* Not exported (a static function): the nearest symbol below would name the wrong
		 * function. The object and offset do not: `addr2line -f -e OBJECT OFFSET`. */
		const char *base = info.dli_fname != NULL ? strrchr(info.dli_fname, '/') : NULL;

		snprintf(buf, len, "%s+%#lx",
			 base != NULL ? base + 1 : (info.dli_fname != NULL ? info.dli_fname : "?"),
			 (unsigned long)((uintptr_t)fn - (uintptr_t)info.dli_fbase));
	}
	return buf;
}
