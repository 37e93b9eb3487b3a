// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// A test harness for plugin authors: load a built plugin library in-process, create the plugin
/// with a config (schema defaults filled in, required keys checked), feed it records, collect
/// what it yields or the outcomes it delivers. Header-only; link with ${CMAKE_DL_LIBS}.
///
///   etl::sdk::testing::LoadedPlugin plugin(PLUGIN_FILE);          // from $<TARGET_FILE:...>
///   auto sink = plugin.create_sink({{"path", "out.jsonl"}});
///   auto outcomes = etl::sdk::testing::write_all(*sink, etl::sdk::testing::records("token", {"a", "b"}));
///
/// The LoadedPlugin must outlive every object it created, and exceptions thrown by the plugin
/// must be caught while it is alive (their code lives in the plugin library).

#include <dlfcn.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {
namespace testing {

/// A Context that keeps log lines for inspection and can be told to stop.
class TestContext final : public Context {
 public:
  explicit TestContext(std::string name = "under-test") : name_(std::move(name)) {}
  void log(LogLevel level, std::string_view message) noexcept override {
    try {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(std::string(level == LogLevel::error     ? "error: "
                                      : level == LogLevel::warning ? "warning: "
                                      : level == LogLevel::info    ? "info: "
                                                                   : "debug: ") +
                          std::string(message));
    } catch (...) {
    }
  }
  [[nodiscard]] bool stop_requested() const noexcept override { return stop_; }
  [[nodiscard]] std::string_view plugin_name() const noexcept override { return name_; }

  void request_stop() noexcept { stop_ = true; }
  [[nodiscard]] std::vector<std::string> log_lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  std::string name_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

/// A plugin library loaded for a test. Not copyable; keep it alive while its objects live.
class LoadedPlugin {
 public:
  explicit LoadedPlugin(const std::string& path) : path_(path) {
    handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) throw std::runtime_error(path + ": cannot load: " + ::dlerror());
    auto** pointer = static_cast<const PluginDescriptor**>(::dlsym(handle_, kDescriptorSymbol));
    if (pointer == nullptr || *pointer == nullptr) {
      ::dlclose(handle_);
      throw std::runtime_error(path + ": not an etl-host plugin (no " + std::string(kDescriptorSymbol) + ")");
    }
    descriptor_ = *pointer;
    if (descriptor_->magic != kDescriptorMagic || descriptor_->abi_version != kAbiVersion) {
      ::dlclose(handle_);
      throw std::runtime_error(path + ": built for SDK ABI " + std::to_string(descriptor_->abi_version) +
                               ", this test uses ABI " + std::to_string(kAbiVersion));
    }
    schema_ = nlohmann::json::parse(descriptor_->config_schema ? descriptor_->config_schema : "{}");
  }
  ~LoadedPlugin() { ::dlclose(handle_); }
  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;

  [[nodiscard]] const PluginDescriptor& descriptor() const noexcept { return *descriptor_; }
  [[nodiscard]] const nlohmann::json& schema() const noexcept { return schema_; }
  [[nodiscard]] TestContext& context() noexcept { return context_; }

  /// `config` with the schema's defaults filled in (nested objects too); throws
  /// std::invalid_argument naming a missing required key. Full validation is the host's job:
  /// run `etl-host validate` on a pipeline for that.
  [[nodiscard]] nlohmann::json complete(nlohmann::json config) const {
    fill_defaults(schema_, config, "");
    return config;
  }

  std::unique_ptr<Source> create_source(const nlohmann::json& config) {
    return create<Source>(config, descriptor_->create_source);
  }
  std::unique_ptr<Sink> create_sink(const nlohmann::json& config) {
    return create<Sink>(config, descriptor_->create_sink);
  }
  std::unique_ptr<Reporter> create_reporter(const nlohmann::json& config) {
    return create<Reporter>(config, descriptor_->create_reporter);
  }
  std::unique_ptr<Transform> create_transform(const nlohmann::json& config) {
    return create<Transform>(config, descriptor_->create_transform);
  }

 private:
  static void fill_defaults(const nlohmann::json& schema, nlohmann::json& value, const std::string& pointer) {
    if (!schema.is_object() || !value.is_object() || !schema.contains("properties")) return;
    for (const auto& [key, property] : schema.at("properties").items()) {
      if (!value.contains(key) && property.is_object() && property.contains("default")) value[key] = property.at("default");
      if (value.contains(key)) fill_defaults(property, value[key], pointer + "/" + key);
    }
    if (schema.contains("required")) {
      for (const auto& key : schema.at("required")) {
        if (!value.contains(key.get<std::string>())) {
          throw std::invalid_argument("config" + pointer + ": required key \"" + key.get<std::string>() + "\" is missing");
        }
      }
    }
  }

  template <class T, class Factory>
  std::unique_ptr<T> create(const nlohmann::json& config, Factory factory) {
    if (factory == nullptr) throw std::logic_error(path_ + ": the plugin is not of that kind");
    const std::string text = complete(config).dump();
    return factory(PluginArgs{text, context_});
  }

  std::string path_;
  void* handle_ = nullptr;
  const PluginDescriptor* descriptor_ = nullptr;
  nlohmann::json schema_;
  TestContext context_;
};

/// Outcomes a sink delivered, by sequence number; counts every delivery (to catch duplicates).
class CollectingReceiver final : public OutcomeReceiver {
 public:
  void deliver(std::uint64_t sequence, Outcome outcome) noexcept override {
    std::lock_guard lock(mutex_);
    ++deliveries_;
    outcomes_[sequence] = std::move(outcome);
  }
  [[nodiscard]] std::map<std::uint64_t, Outcome> outcomes() const {
    std::lock_guard lock(mutex_);
    return outcomes_;
  }
  [[nodiscard]] std::size_t deliveries() const {
    std::lock_guard lock(mutex_);
    return deliveries_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Outcome> outcomes_;
  std::size_t deliveries_ = 0;
};

/// Records with one field each, numbered from 1 as the host would number them.
inline Batch records(const std::string& field, const std::vector<std::string>& values) {
  Batch batch;
  for (const auto& value : values) {
    Record record;
    record.set(field, value);
    record.sequence = batch.size() + 1;
    batch.push_back(std::move(record));
  }
  return batch;
}

/// The RunInfo a host gives reporters, for a run whose source declared `fields`.
inline RunInfo run_info(std::vector<std::string> fields, std::string pipeline = "pipeline.json") {
  RunInfo run;
  run.pipeline = std::move(pipeline);
  run.source_plugin = "source";
  run.sink_plugin = "sink";
  run.fields = std::move(fields);
  return run;
}

/// Opens the source and reads it to the end, numbering records as the host does.
inline Batch read_all(Source& source, std::size_t batch_size = 100) {
  source.open();
  Batch all;
  Batch batch;
  bool more = true;
  while (more) {
    batch.clear();
    more = source.read(batch, batch_size);
    for (auto& record : batch) {
      record.sequence = all.size() + 1;
      all.push_back(std::move(record));
    }
  }
  return all;
}

/// What a transform made of one record: its verdict, the record as changed, and any it added.
struct Transformed {
  TransformResult result;
  Record record;
  Batch extra;
};

/// Runs one record through a transform (opened by the caller, as the host opens it once).
inline Transformed transform_one(Transform& transform, Record record) {
  Transformed out;
  out.result = transform.apply(record, out.extra);
  out.record = std::move(record);
  return out;
}

/// Opens the sink, writes the records, finishes; returns the collected outcomes.
inline std::map<std::uint64_t, Outcome> write_all(Sink& sink, const Batch& batch, std::size_t* deliveries = nullptr) {
  CollectingReceiver receiver;
  sink.open(receiver);
  sink.write(batch);
  sink.finish();
  if (deliveries != nullptr) *deliveries = receiver.deliveries();
  return receiver.outcomes();
}

}  // namespace testing
}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
