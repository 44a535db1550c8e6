# hv-kvp-net: the KVP daemon's auto pool (2) and IP configuration operations
# (GET_IP_INFO, SET_IP_INFO) behind the kvp_provider table (kvp-provider.h).
# Included from the top-level CMakeLists.txt after add_subdirectory(common).
pkg_check_modules(LIBNL_ROUTE3 REQUIRED IMPORTED_TARGET libnl-route-3.0>=3.2.26)

# Where the distro helper scripts (hv_get_dns_info, hv_get_dhcp_info,
# hv_set_ifconfig) are installed and looked for: upstream's, Fedora's and
# Debian's place, so existing distro helpers keep working.
set(HV_KVP_SCRIPTS_DIR "${CMAKE_INSTALL_FULL_LIBEXECDIR}/hypervkvpd" CACHE PATH
  "Directory of the KVP helper scripts")
# Where SET_IP_INFO writes ifcfg-<if> and <if>.nmconnection (upstream: /var/lib/hyperv).
set(HV_KVP_STATEDIR "/var/lib/hyperv" CACHE PATH "KVP state directory")

add_library(hv-kvp-net STATIC
  ${CMAKE_CURRENT_LIST_DIR}/kvp-auto.c
  ${CMAKE_CURRENT_LIST_DIR}/kvp-osinfo.c
  ${CMAKE_CURRENT_LIST_DIR}/kvp-helper.c
  ${CMAKE_CURRENT_LIST_DIR}/kvp-ifcfg.c
  ${CMAKE_CURRENT_LIST_DIR}/kvp-netlink.c
  ${CMAKE_CURRENT_LIST_DIR}/kvp-net.c
)
target_include_directories(hv-kvp-net PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(hv-kvp-net PRIVATE
  HV_KVP_SCRIPTS_DIR="${HV_KVP_SCRIPTS_DIR}"
  HV_KVP_STATEDIR="${HV_KVP_STATEDIR}")
target_link_libraries(hv-kvp-net PUBLIC hv-common PkgConfig::LIBNL3 PkgConfig::LIBNL_ROUTE3)

install(PROGRAMS
  ${CMAKE_CURRENT_LIST_DIR}/../packaging/kvp/hv_get_dns_info
  ${CMAKE_CURRENT_LIST_DIR}/../packaging/kvp/hv_get_dhcp_info
  ${CMAKE_CURRENT_LIST_DIR}/../packaging/kvp/hv_set_ifconfig
  DESTINATION ${HV_KVP_SCRIPTS_DIR})
