/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "store_egress.h"
