# Unit tests of hv-kvp-net (hv_kvp/net.cmake): included from
# tests/unit/CMakeLists.txt.
if(TARGET hv-kvp-net)
  hv_add_unit_test(test-kvp-osinfo SOURCES test-kvp-osinfo.c LIBS hv-kvp-net)
  hv_add_unit_test(test-kvp-auto SOURCES test-kvp-auto.c LIBS hv-kvp-net)
  hv_add_unit_test(test-kvp-ifcfg SOURCES test-kvp-ifcfg.c LIBS hv-kvp-net)
  hv_add_unit_test(test-kvp-helper SOURCES test-kvp-helper.c LIBS hv-kvp-net)
  # SET_IP_INFO end to end on a fake sysfs: temp dirs only, no root needed.
  hv_add_unit_test(test-kvp-set-ip SOURCES test-kvp-set-ip.c LIBS hv-kvp-net)
  # GET_IP_INFO and the auto pool's addresses on veth interfaces in a network
  # namespace of its own (root; exit 77 otherwise).
  hv_add_unit_test(test-kvp-net SOURCES test-kvp-net.c LIBS hv-kvp-net)
  # The helper scripts, with their backends pointed at a temp root.
  hv_add_unit_test(test-kvp-scripts SOURCES test-kvp-scripts.c LIBS hv-kvp-net)
  foreach(t test-kvp-scripts)
    if(TARGET ${t})
      target_compile_definitions(${t} PRIVATE
        HV_KVP_SCRIPTS_SRCDIR="${PROJECT_SOURCE_DIR}/packaging/kvp")
    endif()
  endforeach()
endif()
