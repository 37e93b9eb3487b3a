// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// What a plugin needs: the interfaces, records and outcomes, config declarations, the retry
/// policy and text checks. No JSON library: include etl/sdk/json.hpp for nlohmann::json
/// conversions (and link etl::sdk_json).

#include "etl/sdk/config.hpp"
#include "etl/sdk/outcome.hpp"
#include "etl/sdk/plugin.hpp"
#include "etl/sdk/record.hpp"
#include "etl/sdk/retry.hpp"
#include "etl/sdk/service.hpp"
#include "etl/sdk/text.hpp"
#include "etl/sdk/value.hpp"
#include "etl/sdk/version.hpp"
