// The precompiled header every test target reuses (tests/support/CMakeLists.txt): GoogleTest,
// nlohmann/json and the standard headers the tests share are parsed once per build, not once per
// test file.
