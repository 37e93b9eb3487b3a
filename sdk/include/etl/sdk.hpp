// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Everything a plugin needs: include this one header.

#include "etl/sdk/config.hpp"
#include "etl/sdk/json.hpp"
#include "etl/sdk/outcome.hpp"
#include "etl/sdk/plugin.hpp"
#include "etl/sdk/record.hpp"
#include "etl/sdk/value.hpp"
#include "etl/sdk/retry.hpp"
#include "etl/sdk/text.hpp"
#include "etl/sdk/version.hpp"
