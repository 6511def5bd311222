// Internal helpers shared by the kernel drivers (baseline code only; never
// included by the ISA directories): aligned buffers, integer rounding, the
// task-grid constants, and the epilogue names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/conv.h"
#include "kernels/microkernels.h"

namespace pyflame_vision {
namespace kernels {

/// 64-byte aligned floats, shared and read-only once filled (packed weights
/// are shared by the kernels of several input shapes).
using AlignedFloats = std::shared_ptr<float>;
/// n floats (at least one), zeroed, 64-byte aligned. Throws std::bad_alloc.
AlignedFloats alloc_zeroed(size_t n);

inline size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
inline size_t round_up(size_t a, size_t b) { return ceil_div(a, b) * b; }

/// Budget for one task's packed-weight block (kept in L2 while the task's
/// row tiles stream past it).
constexpr size_t kWeightBlockBytes = 192 * 1024;
/// Minimum number of tiles in a grid, so that threads stay balanced.
constexpr size_t kMinTasks = 24;

/// The microkernel activation code of an epilogue (see microkernels.h).
int ukernel_act(Epilogue e);
/// " +relu", " +silu", " +sigmoid" or "".
const char* epilogue_suffix(Epilogue e);
/// Throws InvalidArgument for a tier outside the enum or above detected_isa().
void check_isa(Isa isa, const char* who);

}  // namespace kernels
}  // namespace pyflame_vision
