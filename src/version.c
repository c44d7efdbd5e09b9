/*
 * version.c - the library's version, for programs that check at run time which library they
 * loaded (meson.build checks at configure time that the header's macros match the project's).
 */
#include "thread_pool.h"

const char *tp_version(void)
{
	return TP_VERSION_STRING;
}
