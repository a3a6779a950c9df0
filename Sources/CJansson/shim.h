#ifndef OUTLIERS_CJANSSON_SHIM_H
#define OUTLIERS_CJANSSON_SHIM_H
#include <jansson.h>
#endif
