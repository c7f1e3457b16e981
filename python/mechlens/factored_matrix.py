"""FactoredMatrix: TL's low-rank matrix A @ B, kept factored.

The same class as TransformerLens's (transformer_lens.FactoredMatrix): the same
constructor (broadcasting the leading dimensions), @ with tensors, vectors and other
FactoredMatrix objects (on both sides), * by a scalar, AB / BA / T, the SVD computed
from the factors (U, S, Vh where U @ diag(S) @ Vh.T == AB, Vh being [..., rdim, mdim] as
in TL), eigenvalues, norm(), indexing of the leading dimensions (and of the last two, as
TL does), get_corner, collapse_l() / collapse_r(), make_even, unsqueeze, pair. Plain
torch, so the numbers are TL's to the last bit on the same inputs. The C++ class stays
reachable as mechlens._mechlens.FactoredMatrix.
"""
from functools import lru_cache
from typing import List, Tuple, Union

import torch


def _transpose(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(-1, -2)


class FactoredMatrix:
    """A matrix A @ B ([..., ldim, mdim] @ [..., mdim, rdim]) kept as its two factors."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor):
        self.A = A
        self.B = B
        assert self.A.size(-1) == self.B.size(-2), (
            f"Factored matrix must match on inner dimension, shapes were a: {self.A.shape}, b:{self.B.shape}")
        self.ldim = self.A.size(-2)
        self.rdim = self.B.size(-1)
        self.mdim = self.B.size(-2)
        self.has_leading_dims = (self.A.ndim > 2) or (self.B.ndim > 2)
        self.shape = torch.broadcast_shapes(self.A.shape[:-2], self.B.shape[:-2]) + (self.ldim, self.rdim)
        self.A = self.A.broadcast_to(self.shape[:-2] + (self.ldim, self.mdim))
        self.B = self.B.broadcast_to(self.shape[:-2] + (self.mdim, self.rdim))

    def __matmul__(self, other):
        if isinstance(other, torch.Tensor):
            if other.ndim < 2:
                # a vector: collapse the factorisation and return a vector
                return (self.A @ (self.B @ other.unsqueeze(-1))).squeeze(-1)
            assert other.size(-2) == self.rdim, (
                f"Right matrix must match on inner dimension, shapes were self: {self.shape}, other:{other.shape}")
            if self.rdim > self.mdim:
                return FactoredMatrix(self.A, self.B @ other)
            return FactoredMatrix(self.AB, other)
        if isinstance(other, FactoredMatrix):
            return (self @ other.A) @ other.B
        return NotImplemented

    def __rmatmul__(self, other):
        if isinstance(other, torch.Tensor):
            assert other.size(-1) == self.ldim, (
                f"Left matrix must match on inner dimension, shapes were self: {self.shape}, other:{other.shape}")
            if other.ndim < 2:
                return ((other.unsqueeze(-2) @ self.A) @ self.B).squeeze(-2)
            if self.ldim > self.mdim:
                return FactoredMatrix(other @ self.A, self.B)
            return FactoredMatrix(other, self.AB)
        if isinstance(other, FactoredMatrix):
            return other.A @ (other.B @ self)
        return NotImplemented

    def __mul__(self, scalar: Union[int, float, torch.Tensor]) -> "FactoredMatrix":
        if isinstance(scalar, torch.Tensor):
            assert scalar.numel() == 1, (
                f"Tensor must be a scalar for use with * but was of shape {scalar.shape}. "
                "For matrix multiplication, use @ instead.")
        return FactoredMatrix(self.A * scalar, self.B)

    def __rmul__(self, scalar: Union[int, float, torch.Tensor]) -> "FactoredMatrix":
        return self * scalar

    @property
    def AB(self) -> torch.Tensor:
        """The product matrix [..., ldim, rdim]."""
        return self.A @ self.B

    @property
    def BA(self) -> torch.Tensor:
        """The reverse product [..., rdim, ldim] (ldim == rdim only)."""
        assert self.rdim == self.ldim, f"Can only take ba if ldim==rdim, shapes were self: {self.shape}"
        return self.B @ self.A

    @property
    def T(self) -> "FactoredMatrix":
        return FactoredMatrix(self.B.transpose(-2, -1), self.A.transpose(-2, -1))

    @lru_cache(maxsize=None)
    def svd(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(U, S, Vh) with U @ S.diag() @ Vh.T == AB (Vh is [..., rdim, mdim], as in TL),
        from the SVDs of the factors."""
        Ua, Sa, Vha = torch.svd(self.A)
        Ub, Sb, Vhb = torch.svd(self.B)
        middle = Sa[..., :, None] * _transpose(Vha) @ Ub * Sb[..., None, :]
        Um, Sm, Vhm = torch.svd(middle)
        U = Ua @ Um
        Vh = Vhb @ Vhm
        S = Sm
        return U, S, Vh

    @property
    def U(self) -> torch.Tensor:
        return self.svd()[0]

    @property
    def S(self) -> torch.Tensor:
        return self.svd()[1]

    @property
    def Vh(self) -> torch.Tensor:
        return self.svd()[2]

    @property
    def eigenvalues(self) -> torch.Tensor:
        """The (complex) eigenvalues of BA, which are AB's non-zero ones."""
        return torch.linalg.eig(self.BA).eigenvalues

    def _convert_to_slice(self, sequence: Union[Tuple, List], idx: int) -> Tuple:
        if isinstance(idx, int):
            sequence = list(sequence)
            if isinstance(sequence[idx], int):
                sequence[idx] = slice(sequence[idx], sequence[idx] + 1)
            sequence = tuple(sequence)
        return sequence

    def __getitem__(self, idx) -> "FactoredMatrix":
        """Indexes the leading dimensions (OV[layer, head]); one or two more index the
        rows / columns, keeping them as length-1 dimensions, as in TL."""
        if not isinstance(idx, tuple):
            idx = (idx,)
        length = len([i for i in idx if i is not None])
        if length <= len(self.shape) - 2:
            return FactoredMatrix(self.A[idx], self.B[idx])
        if length == len(self.shape) - 1:
            idx = self._convert_to_slice(idx, -1)
            return FactoredMatrix(self.A[idx], self.B[idx[:-1]])
        if length == len(self.shape):
            idx = self._convert_to_slice(idx, -1)
            idx = self._convert_to_slice(idx, -2)
            return FactoredMatrix(self.A[idx[:-1]], self.B[idx[:-2] + (slice(None), idx[-1])])
        raise ValueError(f"{idx} is too long an index for a FactoredMatrix with shape {self.shape}")

    def norm(self) -> torch.Tensor:
        """The Frobenius norm, sqrt of the sum of the squared singular values."""
        return self.S.pow(2).sum(-1).sqrt()

    def __repr__(self) -> str:
        return f"FactoredMatrix: Shape({self.shape}), Hidden Dim({self.mdim})"

    def make_even(self) -> "FactoredMatrix":
        """The same matrix as (U sqrt(S)) @ (sqrt(S) Vh^T)."""
        return FactoredMatrix(self.U * self.S.sqrt()[..., None, :], self.S.sqrt()[..., :, None] * _transpose(self.Vh))

    def get_corner(self, k: int = 3) -> torch.Tensor:
        from .utils import get_corner

        return get_corner(self.A[..., :k, :] @ self.B[..., :, :k], k)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def collapse_l(self) -> torch.Tensor:
        """S Vh^T: [..., mdim, rdim] (the left orthogonal factor removed)."""
        return self.S[..., :, None] * _transpose(self.Vh)

    def collapse_r(self) -> torch.Tensor:
        """U S: [..., ldim, mdim] (the right orthogonal factor removed)."""
        return self.U * self.S[..., None, :]

    def unsqueeze(self, k: int) -> "FactoredMatrix":
        return FactoredMatrix(self.A.unsqueeze(k), self.B.unsqueeze(k))

    @property
    def pair(self) -> Tuple[torch.Tensor, torch.Tensor]:
        return (self.A, self.B)

    # mechlens's own names of the products with a tensor, kept for older scripts
    def left_mul(self, other: torch.Tensor) -> "FactoredMatrix":
        return other @ self

    def right_mul(self, other: torch.Tensor) -> "FactoredMatrix":
        return self @ other
