#include "python/src/bindings.h"

#include "mechlens/core/error.h"

namespace mechlens::python {

std::shared_ptr<py::object> keep(py::object fn) {
  return std::shared_ptr<py::object>(new py::object(std::move(fn)), [](py::object* o) {
    py::gil_scoped_acquire gil;
    delete o;
  });
}

at::Tensor as_tensor(const py::handle& v, const char* what) {
  if (THPVariable_Check(v.ptr())) return THPVariable_Unpack(v.ptr());
  if (py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v))
    return at::scalar_tensor(v.cast<double>(), at::kDouble);
  throw py::type_error(std::string(what) + " must return a tensor or a number, not " +
                       std::string(py::str(v.get_type().attr("__name__"))));
}

}  // namespace mechlens::python

PYBIND11_MODULE(_mechlens, m) {
  namespace py = pybind11;
  m.doc() = "mechlens: TransformerLens-exact interpretability on libtorch (C++ core)";
  // mechlens::Error is the user's fault (a bad file, a bad argument): the CLI's one-line
  // message, as the exception Python code expects.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mechlens::NotFoundError& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    } catch (const mechlens::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  mechlens::python::bind_model(m);
  mechlens::python::bind_analysis(m);
  mechlens::python::bind_techniques(m);
}
