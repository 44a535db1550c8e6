/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal to kernel/: the libnl error translation, exposed for the unit tests. */
#pragma once

/* A libnl error code (NLE_*, either sign) as a negative errno; 0 stays 0. */
int hv_nl_error_to_errno(int nle);
