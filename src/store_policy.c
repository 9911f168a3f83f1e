/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "err.h"
