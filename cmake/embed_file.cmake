# Writes OUTPUT, a C++ source defining whisperer::NAME (a std::string_view) with the bytes of
# INPUT. NAME defaults to kOpenApiDocument, the first use (docs/openapi.json).
if(NOT DEFINED NAME)
  set(NAME kOpenApiDocument)
endif()
file(READ ${INPUT} content HEX)
# Character literals, not 0xNN: bytes above 0x7f would narrow into a (signed) char.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${content}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT} by cmake/embed_file.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace whisperer {\n"
  "static const char kBytes[] = {${bytes} 0};\n"
  "extern const std::string_view ${NAME}{kBytes, sizeof(kBytes) - 1};\n"
  "}  // namespace whisperer\n")
