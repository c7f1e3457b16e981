"""FactoredMatrix: TL's low-rank matrix A @ B, kept factored (the C++ class, with TL's
Python conveniences: indexing of the leading axes, @, U / S / Vh, shape)."""
import torch

from . import _mechlens as _C

FactoredMatrix = _C.FactoredMatrix


def _getitem(self, idx):
    """Indexes the leading (batch) axes of both factors: OV[layer, head]."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    lead = self.A.dim() - 2
    if len(idx) > lead:
        raise IndexError(f"a FactoredMatrix with {lead} leading axes takes at most {lead} indices here")
    return FactoredMatrix(self.A[idx], self.B[idx])


def _matmul(self, other):
    if isinstance(other, FactoredMatrix):
        return FactoredMatrix(self.A, self.B @ other.AB) if other.rdim < other.ldim else \
            FactoredMatrix(self.AB @ other.A, other.B)
    return self.right_mul(other)


def _rmatmul(self, other):
    return self.left_mul(other)


def _svd_parts(self, i):
    return self.svd()[i]


FactoredMatrix.__getitem__ = _getitem
FactoredMatrix.__matmul__ = _matmul
FactoredMatrix.__rmatmul__ = _rmatmul
FactoredMatrix.U = property(lambda self: _svd_parts(self, 0))
FactoredMatrix.Vh = property(lambda self: _svd_parts(self, 2).transpose(-1, -2))
FactoredMatrix.V = property(lambda self: _svd_parts(self, 2))
FactoredMatrix.shape = property(lambda self: torch.Size(list(self.A.shape[:-1]) + [self.B.shape[-1]]))
FactoredMatrix.ndim = property(lambda self: self.A.dim())
FactoredMatrix.__repr__ = lambda self: f"FactoredMatrix(shape={tuple(self.shape)}, mdim={self.mdim})"
