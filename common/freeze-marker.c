/* placeholder: being written */
typedef int hv_placeholder_freeze_marker;
