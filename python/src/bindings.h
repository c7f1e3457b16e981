// The pybind11 module mechlens._mechlens: thin bindings over libmechlens. The
// TransformerLens-shaped API (HookedTransformer, ActivationCache, patching, ...) is
// the Python package around it (python/mechlens); this layer only converts.
#pragma once
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include <string>
#include <vector>

#include "mechlens/model/hooked_transformer.h"

namespace mechlens::python {

namespace py = pybind11;

void bind_model(py::module_& m);     // load, forward, caches, hooks, weights, tokenizer, generate
void bind_analysis(py::module_& m);    // residual stack, patching, circuits, head detection
void bind_techniques(py::module_& m);  // ablation and self-repair, IOI, the training lab's recipes

// A Python callable kept alive by C++ (hooks, metrics): released under the GIL
// whenever the last C++ copy goes, whichever thread that is on.
std::shared_ptr<py::object> keep(py::object fn);

// A Python value as a tensor: tensors pass through, numbers become 0-d float tensors.
at::Tensor as_tensor(const py::handle& v, const char* what);

}  // namespace mechlens::python
