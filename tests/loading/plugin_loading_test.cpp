// Loading real plugin libraries: good ones, missing ones, non-plugins, ABI mismatches, conflicts.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "plugin_harness.hpp"
#include "plugin_registry.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

namespace fs = std::filesystem;
using host::PluginLoadError;
using host::PluginRegistry;

std::string test_plugins(const std::string& dir) { return binary_dir() + "/test-plugins/" + dir; }

std::string load_error(const std::string& path) {
  try {
    PluginRegistry::load_file(path);
  } catch (const PluginLoadError& e) {
    return e.what();
  }
  return "";
}

TEST(PluginLoading, GoodPluginsAreFoundWithTheirDescriptors) {
  PluginRegistry registry;
  registry.scan({test_plugins("good")});
  ASSERT_EQ(registry.plugins().size(), 3u);
  EXPECT_EQ(registry.resolve("test-slow-reporter").kind, sdk::PluginKind::reporter);
  const auto& counter = registry.resolve("test-counter");
  EXPECT_EQ(counter.kind, sdk::PluginKind::source);
  EXPECT_EQ(counter.version, "0.0.1");
  EXPECT_EQ(counter.abi_version, sdk::kAbiVersion);
  EXPECT_EQ(counter.file, test_plugins("good") + "/etl-test-counter.so");
  EXPECT_EQ(counter.schema.at("properties").at("count").at("default"), 3);
  EXPECT_EQ(registry.resolve("test-sink").kind, sdk::PluginKind::sink);
}

TEST(PluginLoading, BundledPluginsAreAllThere) {
  PluginRegistry registry;
  registry.scan({PluginRegistry::bundled_plugin_dir()});
  EXPECT_TRUE(registry.refused().empty());
  for (const char* name : {"http-newline", "file-lines", "postgres-query", "validate", "map", "postgres-lookup",
                           "postgres-row-by-row", "null", "stdout", "csv", "json"}) {
    EXPECT_NO_THROW(registry.resolve(name)) << name;
  }
  EXPECT_EQ(registry.resolve("validate").kind, sdk::PluginKind::transform);
}

TEST(PluginLoading, MissingPluginFile) {
  const auto error = load_error(test_plugins("good") + "/nope.so");
  EXPECT_NE(error.find("nope.so: no such plugin file"), std::string::npos) << error;
}

TEST(PluginLoading, LibraryThatIsNotAPlugin) {
  const auto file = test_plugins("bad") + "/etl-test-not-a-plugin.so";
  const auto error = load_error(file);
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("not an etl-host plugin"), std::string::npos) << error;
}

TEST(PluginLoading, FileThatIsNotALibrary) {
  TempDir dir;
  write_file(dir.file("fake.so"), "this is text, not ELF");
  const auto error = load_error(dir.file("fake.so"));
  EXPECT_NE(error.find("fake.so: not a plugin: the file is not a shared library (no ELF header)"), std::string::npos)
      << error;
}

TEST(PluginLoading, AbiMismatchIsRefusedFromTheFileBeforeAnyOfItsCodeRuns) {
  // The library aborts in a static initializer: getting past this line proves it never loaded.
  const auto file = test_plugins("bad") + "/etl-test-abi-mismatch.so";
  const auto error = load_error(file);
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("built for SDK ABI version 42"), std::string::npos) << error;
  EXPECT_NE(error.find("this etl-host uses SDK ABI version " + std::to_string(sdk::kAbiVersion)), std::string::npos)
      << error;
  EXPECT_NE(error.find("not loaded"), std::string::npos) << error;
}

TEST(PluginLoading, APluginForAbi1IsRefusedNamingBothVersions) {
  const auto file = test_plugins("bad") + "/etl-test-abi-v1.so";
  const auto error = load_error(file);
  EXPECT_NE(error.find("built for SDK ABI version 1,"), std::string::npos) << error;
  EXPECT_NE(error.find("this etl-host uses SDK ABI version 2"), std::string::npos) << error;
  EXPECT_NE(error.find("SDK " ETL_SDK_VERSION_STRING), std::string::npos) << error;
}

TEST(PluginLoading, DescriptorAbiIsCheckedToo) {
  const auto file = test_plugins("bad") + "/etl-test-descriptor-mismatch.so";
  const auto error = load_error(file);
  EXPECT_NE(error.find("'test-inconsistent' was built for SDK ABI version " + std::to_string(sdk::kAbiVersion + 6)),
            std::string::npos)
      << error;
}

TEST(PluginLoading, ScanningKeepsRefusedLibrariesAndNamesThemWhenAPluginIsMissing) {
  PluginRegistry registry;
  registry.scan({test_plugins("bad"), test_plugins("good")});
  EXPECT_EQ(registry.refused().size(), 4u);
  try {
    registry.resolve("test-future");  // refused unloaded, so known only by its file
    FAIL() << "expected an error";
  } catch (const PluginLoadError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("unknown plugin 'test-future'"), std::string::npos) << message;
    EXPECT_NE(message.find("available: test-counter, test-sink, test-slow-reporter"), std::string::npos) << message;
    EXPECT_NE(message.find("etl-test-abi-mismatch.so"), std::string::npos) << message;
  }
}

TEST(PluginLoading, TwoLibrariesWithTheSameNameAreAnErrorNamingBoth) {
  PluginRegistry registry;
  registry.scan({test_plugins("good"), test_plugins("dup")});
  ASSERT_EQ(registry.conflicts().size(), 1u);
  try {
    registry.resolve("test-counter");
    FAIL() << "expected a conflict";
  } catch (const PluginLoadError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(test_plugins("good") + "/etl-test-counter.so"), std::string::npos) << message;
    EXPECT_NE(message.find(test_plugins("dup") + "/etl-test-counter-copy.so"), std::string::npos) << message;
  }
}

TEST(PluginLoading, WorldWritablePluginIsRefused) {
  TempDir dir;
  const auto copy = dir.file("etl-test-counter.so");
  fs::copy_file(test_plugins("good") + "/etl-test-counter.so", copy);
  ::chmod(copy.c_str(), 0666);
  const auto error = load_error(copy);
  EXPECT_NE(error.find("anyone can write"), std::string::npos) << error;
  ::chmod(copy.c_str(), 0644);
  EXPECT_EQ(load_error(copy), "");
}

TEST(PluginLoading, ASymlinkToAPluginInAWorldWritableFolderIsRefused) {
  TempDir dir;
  const fs::path open = fs::path(dir.file("open"));
  const fs::path safe = fs::path(dir.file("safe"));
  fs::create_directories(open);
  fs::create_directories(safe);
  fs::copy_file(test_plugins("good") + "/etl-test-counter.so", open / "etl-test-counter.so");
  fs::create_symlink(open / "etl-test-counter.so", safe / "etl-test-counter.so");
  ::chmod(open.c_str(), 0777);
  const auto error = load_error((safe / "etl-test-counter.so").string());
  EXPECT_NE(error.find("anyone can write"), std::string::npos) << error;
  EXPECT_NE(error.find(open.string()), std::string::npos) << error;
  ::chmod(open.c_str(), 0755);
  EXPECT_EQ(load_error((safe / "etl-test-counter.so").string()), "");
}

constexpr uid_t kNobody = 65534;

TEST(PluginLoading, APluginFileOwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root";
  TempDir dir;
  const auto copy = dir.file("etl-test-counter.so");
  fs::copy_file(test_plugins("good") + "/etl-test-counter.so", copy);
  ASSERT_EQ(::chown(copy.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  const auto error = load_error(copy);
  EXPECT_NE(error.find("a plugin file owned by uid 65534"), std::string::npos) << error;
  EXPECT_NE(error.find("must belong to root or to the user running etl-host"), std::string::npos) << error;
  ASSERT_EQ(::chown(copy.c_str(), 0, static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(load_error(copy), "");
}

TEST(PluginLoading, AStickyFolderOwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a folder to another user needs root";
  TempDir dir;
  const fs::path sticky = fs::path(dir.file("shared"));
  fs::create_directories(sticky);
  fs::copy_file(test_plugins("good") + "/etl-test-counter.so", sticky / "etl-test-counter.so");
  ::chmod(sticky.c_str(), 01777);
  ASSERT_EQ(::chown(sticky.c_str(), kNobody, static_cast<gid_t>(-1)), 0);
  const auto error = load_error((sticky / "etl-test-counter.so").string());
  EXPECT_NE(error.find("from under folder " + sticky.string() + ", owned by uid 65534"), std::string::npos) << error;
  // The same sticky folder owned by root, like /tmp, passes.
  ASSERT_EQ(::chown(sticky.c_str(), 0, static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(load_error((sticky / "etl-test-counter.so").string()), "");
}

TEST(PluginLoading, PluginObjectKeepsItsLibraryLoaded) {
  host::PluginInstance<sdk::Source> source;
  {
    PluginRegistry registry;
    registry.scan({test_plugins("good")});
    source = create_plugin<sdk::Source>(registry.resolve("test-counter"), {{"count", 2}});
  }  // the registry and its references to the library are gone
  sdk::Batch batch;
  source.object->read(batch, 10);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(*batch[1].text("n"), "2");
}

TEST(PluginLoading, EtlHostListsPluginsAsJson) {
  const auto result = run_process({etl_host_binary(), "plugins", "--json", "--plugin-path", test_plugins("good")});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto list = nlohmann::json::parse(result.out);
  std::set<std::string> names;
  for (const auto& plugin : list) {
    names.insert(plugin.at("name").get<std::string>());
    EXPECT_TRUE(plugin.at("config_schema").is_object());
    EXPECT_EQ(plugin.at("abi_version"), sdk::kAbiVersion);
    EXPECT_EQ(plugin.at("sdk_version"), ETL_SDK_VERSION_STRING) << plugin.at("name");
  }
  EXPECT_EQ(names, (std::set<std::string>{"test-counter", "test-sink", "test-slow-reporter", "http-newline", "file-lines",
                                          "postgres-query", "postgres-cdc", "validate", "map", "postgres-lookup", "postgres-row-by-row", "postgres-copy",
                                          "null", "stdout", "csv", "json", "csv-file", "json-files", "http-post", "http-server"}));
}

TEST(PluginLoading, APluginBuiltWithANewerSdkMinorLoadsWithAWarningNamingBothVersions) {
  const auto result = run_process({etl_host_binary(), "plugins", "--json", "--plugin-path", test_plugins("newer")});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("plugin 'test-newer-sdk' (" + test_plugins("newer")), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("was built with SDK 2.9.0, newer than this etl-host's " ETL_SDK_VERSION_STRING), std::string::npos)
      << result.err;
  bool listed = false;
  for (const auto& plugin : nlohmann::json::parse(result.out)) {
    if (plugin.at("name") == "test-newer-sdk") {
      listed = true;
      EXPECT_EQ(plugin.at("sdk_version"), "2.9.0");
    }
  }
  EXPECT_TRUE(listed) << result.out;
  // The bundled plugins alone: no such warning.
  const auto bundled = run_process({etl_host_binary(), "plugins"});
  EXPECT_EQ(bundled.err.find("newer than this etl-host"), std::string::npos) << bundled.err;
}

TEST(PluginLoading, EtlPluginPathEnvironmentVariable) {
  ProcessOptions options;
  options.set_env["ETL_PLUGIN_PATH"] = "/nonexistent:" + test_plugins("good");
  const auto result = run_process({etl_host_binary(), "plugins"}, options);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("test-counter"), std::string::npos) << result.out;
}

TEST(PluginLoading, ConflictingPluginsFailThePluginsCommand) {
  const auto result = run_process({etl_host_binary(), "plugins", "--plugin-path", test_plugins("good"),
                                   "--plugin-path", test_plugins("dup")});
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_NE(result.err.find("provided by both"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace etl::testing
