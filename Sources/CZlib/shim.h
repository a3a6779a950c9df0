#ifndef OUTLIERS_CZLIB_SHIM_H
#define OUTLIERS_CZLIB_SHIM_H
#include <zlib.h>
#endif
