# etl_add_plugin(<target> KIND source|transform|sink|reporter SOURCES <files>... [LIBRARIES <libs>...])
#
# Builds an etl-host plugin: a MODULE library named <target>.so, linked to etl::sdk, with
# hidden symbol visibility (only the descriptor is exported), installed into
# ETL_PLUGIN_INSTALL_DIR (default lib/etl-host/plugins). When ETL_PLUGIN_OUTPUT_DIRECTORY is
# set, the library is also placed there in the build tree.
function(etl_add_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "KIND" "SOURCES;LIBRARIES")
  if(NOT ARG_KIND MATCHES "^(source|transform|sink|reporter)$")
    message(FATAL_ERROR "etl_add_plugin(${target}): KIND must be source, transform, sink or reporter, not '${ARG_KIND}'")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "etl_add_plugin(${target}): SOURCES is empty")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE etl::sdk ${ARG_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    ETL_PLUGIN_KIND ${ARG_KIND})
  # A plugin must not leave symbols for the host to resolve at run time.
  target_link_options(${target} PRIVATE "LINKER:--no-undefined")
  # Every plugin of the project, for targets that need them all (a test of the whole set).
  set_property(GLOBAL APPEND PROPERTY ETL_PLUGIN_TARGETS ${target})
  if(ETL_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ETL_PLUGIN_OUTPUT_DIRECTORY}")
  endif()
  if(NOT ETL_PLUGIN_INSTALL_DIR)
    set(ETL_PLUGIN_INSTALL_DIR "lib/etl-host/plugins")
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION "${ETL_PLUGIN_INSTALL_DIR}")
endfunction()
