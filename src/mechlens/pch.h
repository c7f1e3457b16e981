// Precompiled header: ATen is the expensive include every tensor file needs.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
