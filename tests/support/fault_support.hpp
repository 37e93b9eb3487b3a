#pragma once
// Fault injection for end-to-end tests: tools/tcp-proxy under test control, and the check of
// the promise every run must keep whatever went wrong.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {

/// tools/tcp-proxy in front of a target port, with its control port.
class TcpProxy {
 public:
  explicit TcpProxy(int target_port, const std::vector<std::string>& extra_arguments = {}) {
    std::vector<std::string> argv{binary_dir() + "/bin/tcp-proxy", "--target", "127.0.0.1:" + std::to_string(target_port)};
    argv.insert(argv.end(), extra_arguments.begin(), extra_arguments.end());
    process_ = std::make_unique<BackgroundProcess>(argv);
    port_ = std::stoi(process_->read_line());
    const std::string control = process_->read_line();
    control_port_ = std::stoi(control.substr(control.find(' ') + 1));
  }
  ~TcpProxy() {
    if (control_fd_ >= 0) close(control_fd_);
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }

  /// Sends a control command ("reset", "reset all", "stall", "resume", "down", "up", "count");
  /// returns N of the "ok N" answer.
  int command(const std::string& line) {
    if (control_fd_ < 0) {
      control_fd_ = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = htons(static_cast<uint16_t>(control_port_));
      if (connect(control_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        throw std::runtime_error("cannot reach the tcp-proxy control port");
      }
    }
    const std::string request = line + "\n";
    if (send(control_fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) throw std::runtime_error("tcp-proxy control: send failed");
    std::string answer;
    char c = 0;
    while (read(control_fd_, &c, 1) == 1 && c != '\n') answer += c;
    if (!answer.starts_with("ok ")) throw std::runtime_error("tcp-proxy control: " + line + " -> " + answer);
    return std::stoi(answer.substr(3));
  }

 private:
  std::unique_ptr<BackgroundProcess> process_;
  int port_ = 0;
  int control_port_ = 0;
  int control_fd_ = -1;
};

/// The promise, measured: every record received is reported once, every record reported ok is
/// in the table exactly once, nothing else from the run is in the table. Rows reported failed
/// with "commit outcome unknown" (08007) are the one allowed exception: they may be in the table.
struct PromiseCheck {
  std::size_t received = 0;     // summary.received
  std::size_t reported = 0;     // records in the JSON report
  std::size_t csv_rows = 0;     // data lines in the CSV report
  std::size_t ok = 0, rejected = 0, failed = 0, commit_unknown = 0;
  std::size_t lost = 0;         // reported ok, missing from the table
  std::size_t duplicated = 0;   // in the table more often than reported ok (beyond commit-unknown rows)
  std::size_t invented = 0;     // in the table, never reported ok nor commit-unknown
  std::size_t unknown_in_table = 0;
  /// Records whose value and status the CSV report gives otherwise than the JSON report (as
  /// multisets): the CSV report is compared with the table through the JSON one.
  std::size_t csv_mismatches = 0;

  [[nodiscard]] bool kept() const {
    return reported == received && csv_rows == received && csv_mismatches == 0 && lost == 0 && duplicated == 0 &&
           invented == 0;
  }
};

inline std::ostream& operator<<(std::ostream& out, const PromiseCheck& c) {
  return out << "received=" << c.received << " reported=" << c.reported << " csv_rows=" << c.csv_rows
             << " ok=" << c.ok << " rejected=" << c.rejected << " failed=" << c.failed
             << " commit_unknown=" << c.commit_unknown << " (in table " << c.unknown_in_table << ")"
             << " lost=" << c.lost << " duplicated=" << c.duplicated << " invented=" << c.invented
             << " csv_mismatches=" << c.csv_mismatches;
}

/// The fields of each record of CSV text (RFC 4180: quoted fields may hold commas, quotes and
/// line breaks), header included.
inline std::vector<std::vector<std::string>> csv_rows_of(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n') {
      if (!field.empty() && field.back() == '\r') field.pop_back();
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

/// Records in CSV text after its header; a quoted field may hold line breaks.
inline std::size_t csv_record_count(const std::string& text) {
  std::size_t records = 0;
  bool quoted = false;
  bool at_line_start = true;
  for (const char c : text) {
    if (c == '"') quoted = !quoted;
    if (c == '\n' && !quoted) {
      at_line_start = true;
      continue;
    }
    if (at_line_start) ++records;
    at_line_start = false;
  }
  return records == 0 ? 0 : records - 1;
}

/// Compares the JSON and CSV reports of a tokens run with the table's `data` column.
inline PromiseCheck check_promise(const std::string& json_report_path, const std::string& csv_report_path,
                                  const std::vector<std::string>& table, const std::string& field = "token") {
  PromiseCheck check;
  const auto report = nlohmann::json::parse(read_file(json_report_path));
  check.received = report.at("summary").at("received").get<std::size_t>();
  check.reported = report.at("records").size();
  check.csv_rows = csv_record_count(read_file(csv_report_path));
  std::map<std::string, std::size_t> ok, unknown, stored;
  for (const auto& record : report.at("records")) {
    const std::string status = record.at("status");
    const std::string value = record.at("record").at(field).is_string() ? record.at("record").at(field).get<std::string>() : std::string();
    if (status == "ok") {
      ++check.ok;
      ++ok[value];
    } else if (status == "rejected") {
      ++check.rejected;
    } else {
      ++check.failed;
      if (record.at("code") == "08007") {
        ++check.commit_unknown;
        ++unknown[value];
      }
    }
  }
  // The CSV report: the same records, value and status, as the JSON one.
  std::map<std::pair<std::string, std::string>, long> by_status;
  for (const auto& record : report.at("records")) {
    const std::string value = record.at("record").at(field).is_string() ? record.at("record").at(field).get<std::string>() : std::string();
    ++by_status[{value, record.at("status").get<std::string>()}];
  }
  const auto csv = csv_rows_of(read_file(csv_report_path));
  std::size_t value_column = 0, status_column = 1;
  if (!csv.empty()) {
    for (std::size_t i = 0; i < csv.front().size(); ++i) {
      if (csv.front()[i] == field) value_column = i;
      if (csv.front()[i] == "status") status_column = i;
    }
  }
  for (std::size_t r = 1; r < csv.size(); ++r) {
    const auto& row = csv[r];
    if (row.size() <= std::max(value_column, status_column)) {
      ++check.csv_mismatches;
      continue;
    }
    // JSON cannot carry bytes that are not UTF-8: its report has them replaced (U+FFFD),
    // where the CSV keeps them as they came. Compare the CSV value as JSON would show it.
    const std::string as_json = nlohmann::json::parse(
        nlohmann::json(row[value_column]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).get<std::string>();
    --by_status[{as_json, row[status_column]}];
  }
  for (const auto& [key, count] : by_status) check.csv_mismatches += static_cast<std::size_t>(count < 0 ? -count : count);

  for (const auto& value : table) ++stored[value];
  for (const auto& [value, count] : ok) {
    const std::size_t in_table = stored.count(value) != 0 ? stored[value] : 0;
    if (in_table < count) check.lost += count - in_table;
  }
  for (const auto& [value, count] : stored) {
    const std::size_t reported_ok = ok.count(value) != 0 ? ok[value] : 0;
    const std::size_t maybe = unknown.count(value) != 0 ? unknown[value] : 0;
    if (count <= reported_ok) continue;
    const std::size_t extra = count - reported_ok;
    check.unknown_in_table += std::min(extra, maybe);
    if (extra > maybe) (reported_ok != 0 ? check.duplicated : check.invented) += extra - maybe;
  }
  return check;
}

}  // namespace etl::testing
