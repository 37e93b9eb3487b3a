#include "postgres/sql_text.hpp"

namespace etl::plugins::postgres {

namespace sql_detail {
namespace {

std::size_t index_of(const std::vector<std::string>& columns, const std::string& name) {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return i;
  }
  return columns.size();
}

}  // namespace
}  // namespace sql_detail

std::string qualified_table(std::string_view schema, std::string_view table) {
  std::string name;
  if (!schema.empty()) {
    name += quote_identifier(schema);
    name += '.';
  }
  name += quote_identifier(table);
  return name;
}


WriteStatement write_statement(WriteMode mode, std::string_view schema, std::string_view table,
                                      const std::vector<std::string>& columns, const std::vector<std::string>& keys,
                                      const std::vector<std::string>& update_columns, std::string_view guard,
                                      const std::vector<std::string>& casts) {
  WriteStatement out;
  const std::string target = qualified_table(schema, table);
  auto parameter = [&](std::size_t column) {
    out.parameters.push_back(column);
    std::string placeholder = "$" + std::to_string(out.parameters.size());
    if (column < casts.size() && !casts[column].empty()) placeholder += "::" + casts[column];
    return placeholder;
  };
  auto key_condition = [&] {
    std::string where;
    for (const auto& key : keys) {
      where += where.empty() ? " WHERE " : " AND ";
      where += quote_identifier(key) + " = " + parameter(sql_detail::index_of(columns, key));
    }
    return where;
  };
  if (mode == WriteMode::insert || mode == WriteMode::upsert) {
    out.sql = "INSERT INTO " + target + " (";
    std::string values;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      out.sql += (i != 0 ? ", " : "") + quote_identifier(columns[i]);
      values += (i != 0 ? ", " : "") + parameter(i);
    }
    out.sql += ") VALUES (" + values + ")";
    if (mode == WriteMode::upsert) {
      out.sql += " ON CONFLICT (";
      for (std::size_t i = 0; i < keys.size(); ++i) out.sql += (i != 0 ? ", " : "") + quote_identifier(keys[i]);
      out.sql += ")";
      if (update_columns.empty()) {
        out.sql += " DO NOTHING";
      } else {
        out.sql += " DO UPDATE SET ";
        for (std::size_t i = 0; i < update_columns.size(); ++i) {
          out.sql += (i != 0 ? ", " : "") + quote_identifier(update_columns[i]) + " = EXCLUDED." +
                     quote_identifier(update_columns[i]);
        }
        if (!guard.empty()) out.sql += " WHERE " + std::string(guard);
      }
    }
  } else if (mode == WriteMode::update) {
    out.sql = "UPDATE " + target + " SET ";
    bool first = true;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (sql_detail::index_of(keys, columns[i]) != keys.size()) continue;
      out.sql += (first ? "" : ", ") + quote_identifier(columns[i]) + " = " + parameter(i);
      first = false;
    }
    out.sql += key_condition();
  } else {
    out.sql = "DELETE FROM " + target + key_condition();
  }
  out.sql += " RETURNING pg_current_xact_id()::text";
  return out;
}

namespace {

/// 'text' as a SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1).
std::string string_literal(std::string_view text) {
  std::string literal = "'";
  for (const char c : text) {
    if (c == '\'') literal += '\'';
    literal += c;
  }
  return literal + "'";
}

/// Builds one statement's text, numbering its parameters as they are used.
struct StatementBuilder {
  const std::vector<std::string>& casts;
  WriteStatement out;
  std::string parameter(std::size_t source) {
    out.parameters.push_back(source);
    std::string placeholder = "$" + std::to_string(out.parameters.size());
    if (source < casts.size() && !casts[source].empty()) placeholder += "::" + casts[source];
    return placeholder;
  }
};

}  // namespace

ChangeStatements change_statements(std::string_view schema, std::string_view table, const std::vector<std::string>& columns,
                                   const std::vector<std::string>& fields, const std::vector<std::string>& keys,
                                   std::size_t unchanged, const std::vector<std::size_t>& old_keys,
                                   const std::vector<std::string>& casts) {
  const std::string target = qualified_table(schema, table);
  const std::string returning = " RETURNING pg_current_xact_id()::text";
  auto is_key = [&](const std::string& column) { return sql_detail::index_of(keys, column) != keys.size(); };
  std::vector<std::string> others;
  for (const auto& column : columns) {
    if (!is_key(column)) others.push_back(column);
  }
  ChangeStatements out;
  auto excluded_assignments = [](const std::vector<std::string>& names) {
    std::string set;
    for (const auto& name : names) set += (set.empty() ? "" : ", ") + quote_identifier(name) + " = EXCLUDED." + quote_identifier(name);
    return set;
  };
  out.upsert = write_statement(WriteMode::upsert, schema, table, columns, keys, others, {}, casts);

  // UPDATE t SET k = $k, c = CASE WHEN $u::jsonb ? 'c' THEN t.c ELSE $c END ...
  //   WHERE (k = $old_k) OR (k = $k): the row where the change found it, or where an earlier
  //   try of this change moved it.
  {
    StatementBuilder b{casts, {}};
    std::string& sql = b.out.sql;
    sql = "UPDATE " + target + " SET ";
    std::string unchanged_list;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const std::string column = quote_identifier(columns[i]);
      sql += (i != 0 ? ", " : "") + column + " = ";
      if (is_key(columns[i])) {
        sql += b.parameter(i);
      } else {
        if (unchanged_list.empty()) unchanged_list = b.parameter(unchanged) + "::jsonb";
        sql += "CASE WHEN " + unchanged_list + " ? " + string_literal(fields[i]) + " THEN " + target + "." + column +
               " ELSE " + b.parameter(i) + " END";
      }
    }
    std::string at_old;
    std::string at_new;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      const std::string column = quote_identifier(keys[k]);
      at_old += (k != 0 ? " AND " : "") + column + " = " + b.parameter(old_keys[k]);
      at_new += (k != 0 ? " AND " : "") + column + " = " + b.parameter(sql_detail::index_of(columns, keys[k]));
    }
    sql += " WHERE (" + at_old + ") OR (" + at_new + ")" + returning;
    out.update_keeping = std::move(b.out);
  }

  // WITH moved AS (DELETE FROM t WHERE k = $old_k) INSERT ... ON CONFLICT (k) DO UPDATE ...
  {
    StatementBuilder b{casts, {}};
    std::string where;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      where += (k != 0 ? " AND " : "") + quote_identifier(keys[k]) + " = " + b.parameter(old_keys[k]);
    }
    std::string values;
    for (std::size_t i = 0; i < columns.size(); ++i) values += (i != 0 ? ", " : "") + b.parameter(i);
    b.out.sql = "WITH moved AS (DELETE FROM " + target + " WHERE " + where + ") INSERT INTO " + target + " (" +
                column_list(columns) + ") VALUES (" + values + ") ON CONFLICT (" + column_list(keys) + ") DO " +
                (others.empty() ? std::string("NOTHING") : "UPDATE SET " + excluded_assignments(others)) + returning;
    out.move = std::move(b.out);
  }

  out.remove = write_statement(WriteMode::remove, schema, table, columns, keys, {}, {}, casts);
  out.truncate.sql = "TRUNCATE " + target;
  return out;
}

std::string column_list(const std::vector<std::string>& columns, std::string_view prefix) {
  std::string list;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) list += ", ";
    list += std::string(prefix) + quote_identifier(columns[i]);
  }
  return list;
}

std::string copy_statement(std::string_view schema, std::string_view table, const std::vector<std::string>& columns,
                                  bool stage) {
  if (stage) {
    return "COPY pg_temp." + quote_identifier(kStageTable) + " (" + column_list(columns) + ", " +
           quote_identifier(kStageOrdinal) + ") FROM STDIN";
  }
  return "COPY " + qualified_table(schema, table) + " (" + column_list(columns) + ") FROM STDIN";
}

std::string create_stage_statement(std::string_view schema, std::string_view table,
                                          const std::vector<std::string>& columns) {
  return "CREATE TEMP TABLE IF NOT EXISTS " + quote_identifier(kStageTable) + " ON COMMIT DELETE ROWS AS SELECT " +
         column_list(columns) + ", 0::integer AS " + quote_identifier(kStageOrdinal) + " FROM " +
         qualified_table(schema, table) + " WITH NO DATA";
}

std::string stage_upsert_statement(std::string_view schema, std::string_view table,
                                          const std::vector<std::string>& columns, const std::vector<std::string>& keys,
                                          const std::vector<std::string>& update_columns, std::string_view guard,
                                          std::size_t first, std::size_t last) {
  const std::string key_list = column_list(keys);
  std::string sql = "INSERT INTO " + qualified_table(schema, table) + " (" + column_list(columns) + ") SELECT DISTINCT ON (" +
                    key_list + ") " + column_list(columns) + " FROM pg_temp." + quote_identifier(kStageTable) +
                    " WHERE " + quote_identifier(kStageOrdinal) + " BETWEEN " + std::to_string(first) + " AND " +
                    std::to_string(last) + " ORDER BY " + key_list + ", " + quote_identifier(kStageOrdinal) +
                    (update_columns.empty() ? " ASC" : " DESC") + " ON CONFLICT (" + key_list + ")";
  if (update_columns.empty()) return sql + " DO NOTHING";
  sql += " DO UPDATE SET ";
  for (std::size_t i = 0; i < update_columns.size(); ++i) {
    sql += (i != 0 ? ", " : "") + quote_identifier(update_columns[i]) + " = EXCLUDED." + quote_identifier(update_columns[i]);
  }
  if (!guard.empty()) sql += " WHERE " + std::string(guard);
  return sql;
}

std::string insert_each_function(std::string_view schema, std::string_view table, const std::vector<std::string>& columns,
                                        const std::vector<std::string>& types) {
  std::string declare, read, values;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const std::string variable = "etl_v" + std::to_string(i + 1);
    declare += "  " + variable + " " + types[i] + ";\n";
    read += "      " + variable + " := etl_rows[etl_i][" + std::to_string(i + 1) + "]::" + types[i] + ";\n";
    values += (i != 0 ? ", " : "") + variable;
  }
  const std::string body = "DECLARE\n" + declare + "BEGIN\n  FOR etl_i IN 1 .. coalesce(array_length(etl_rows, 1), 0) LOOP\n" +
                           "    BEGIN\n" + read + "      INSERT INTO " + qualified_table(schema, table) + " (" +
                           column_list(columns) + ") VALUES (" + values +
                           ");\n    EXCEPTION WHEN OTHERS THEN\n      etl_row := etl_i; etl_code := SQLSTATE; etl_message := SQLERRM;\n"
                           "      RETURN NEXT;\n    END;\n  END LOOP;\nEND";
  std::string tag = "$etl_insert_each$";  // a dollar quote no name in the body can end
  while (body.find(tag) != std::string::npos) tag.insert(tag.size() - 1, "_");
  return "CREATE OR REPLACE FUNCTION pg_temp.etl_insert_each(etl_rows text[]) RETURNS TABLE (etl_row integer, etl_code text, "
         "etl_message text) LANGUAGE plpgsql AS " + tag + "\n" + body + "\n" + tag;
}

std::string lookup_statement(std::string_view schema, std::string_view table,
                                    const std::vector<std::string>& columns, const std::vector<std::string>& casts) {
  std::string sql = "SELECT xmin::text FROM " + qualified_table(schema, table) + " WHERE ";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) sql += " AND ";
    sql += quote_identifier(columns[i]) + " IS NOT DISTINCT FROM $" + std::to_string(i + 1);
    if (i < casts.size() && !casts[i].empty()) sql += "::" + casts[i];
  }
  return sql;
}

}  // namespace etl::plugins::postgres
