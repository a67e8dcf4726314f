# What `cmake --install` and CPack ship: the tools, their man pages (the project version filled
# in) and shell completions, and libst for programs built on it: libst.a and libst.so from the
# layers' objects (compiled once, position-independent), its headers, a CMake package config
# (find_package(st) -> st::st, st::st_static) and a pkg-config file (st.pc).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LIBST_OBJECTS "")
foreach(target ${LIBST_TARGETS})
  list(APPEND LIBST_OBJECTS $<TARGET_OBJECTS:${target}>)
endforeach()
add_library(st_shared SHARED ${LIBST_OBJECTS})
add_library(st_static STATIC ${LIBST_OBJECTS})
set_target_properties(st_shared PROPERTIES OUTPUT_NAME st EXPORT_NAME st VERSION ${PROJECT_VERSION}
                                           SOVERSION ${PROJECT_VERSION_MAJOR})
set_target_properties(st_static PROPERTIES OUTPUT_NAME st EXPORT_NAME st_static)
set(LIBST_LINK_DEPS Threads::Threads PkgConfig::OPENBLAS PkgConfig::ZSTD PkgConfig::XXHASH PkgConfig::PCRE2
                    PkgConfig::UTF8PROC)
foreach(lib st_shared st_static)
  target_include_directories(${lib} PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}>
                                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${lib} PUBLIC nlohmann_json::nlohmann_json)  # the headers include it
  target_compile_features(${lib} PUBLIC cxx_std_17)
endforeach()
target_link_libraries(st_shared PRIVATE ${LIBST_LINK_DEPS})
target_link_libraries(st_static PUBLIC ${LIBST_LINK_DEPS})

install(TARGETS ${ST_TOOLS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS st_shared st_static EXPORT stTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/libst/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/libst
        FILES_MATCHING PATTERN "*.hpp" PATTERN "internal.hpp" EXCLUDE)

set(ST_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/st)
install(EXPORT stTargets NAMESPACE st:: DESTINATION ${ST_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/stConfig.cmake.in ${CMAKE_BINARY_DIR}/stConfig.cmake
                              INSTALL_DESTINATION ${ST_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/stConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/stConfig.cmake ${CMAKE_BINARY_DIR}/stConfigVersion.cmake
        DESTINATION ${ST_CMAKE_DIR})

# st.pc finds its prefix from its own place, so the file is right under any --prefix.
set(ST_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH ST_PC_TO_PREFIX /${ST_PC_DIR} /)
configure_file(${CMAKE_SOURCE_DIR}/cmake/st.pc.in ${CMAKE_BINARY_DIR}/st.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/st.pc DESTINATION ${ST_PC_DIR})

# Man pages: the project version in every .TH line.
file(GLOB MAN_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/man/*.1)
foreach(page ${MAN_SOURCES})
  get_filename_component(name ${page} NAME)
  configure_file(${page} ${CMAKE_BINARY_DIR}/man/${name} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/man/${name} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endforeach()

# Shell completions, generated from each tool's --help once the tools are built.
set(COMPLETION_DIR ${CMAKE_BINARY_DIR}/completions)
set(COMPLETION_FILES ${COMPLETION_DIR}/_st-tools)
set(TOOL_FILES "")
foreach(tool ${ST_TOOLS})
  list(APPEND COMPLETION_FILES ${COMPLETION_DIR}/bash/${tool})
  list(APPEND TOOL_FILES $<TARGET_FILE:${tool}>)
endforeach()
add_custom_command(
  OUTPUT ${COMPLETION_FILES}
  COMMAND python3 ${CMAKE_SOURCE_DIR}/scripts/gen-completions.py ${COMPLETION_DIR} ${TOOL_FILES}
  DEPENDS ${ST_TOOLS} ${CMAKE_SOURCE_DIR}/scripts/gen-completions.py
  COMMENT "Generating bash and zsh completions from the tools' --help" VERBATIM)
add_custom_target(st_completions ALL DEPENDS ${COMPLETION_FILES})
install(DIRECTORY ${COMPLETION_DIR}/bash/ DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${COMPLETION_DIR}/_st-tools DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

# CPack: one .deb with all of the above (cpack -G DEB in the build folder).
set(CPACK_PACKAGE_NAME st-tools)
set(CPACK_PACKAGE_VENDOR "st-tools")
set(CPACK_PACKAGE_CONTACT "st-tools maintainers <maintainers@users.noreply.b-seed-f58d6d86.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "quantize float LLM checkpoints (safetensors) for Ascend MindIE and vllm-ascend, and shard them")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
include(CPack)
