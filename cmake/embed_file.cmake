# Writes OUTPUT, a C++ source defining whisperer::kOpenApiDocument with the bytes of INPUT.
file(READ ${INPUT} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUTPUT}
  "// Generated from docs/openapi.json by cmake/embed_file.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace whisperer {\n"
  "static const char kBytes[] = {${bytes} 0};\n"
  "extern const std::string_view kOpenApiDocument{kBytes, sizeof(kBytes) - 1};\n"
  "}  // namespace whisperer\n")
