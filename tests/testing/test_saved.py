import torch

from torch_geometric_hyper.testing import saved_tensor_bytes


def test_saved_tensor_bytes_counts_distinct_storages_once():
    x = torch.randn(100, requires_grad=True)
    # exp saves its output (400 bytes); x itself is excluded
    assert saved_tensor_bytes(lambda: x.exp().sum(), exclude=[x]) == 400
    # x * x saves x twice: one storage, 400 bytes, when not excluded
    assert saved_tensor_bytes(lambda: (x * x).sum()) == 400
    assert saved_tensor_bytes(lambda: (x * x).sum(), exclude=[x]) == 0
    # views of one storage count once
    y = torch.randn(10, 10, requires_grad=True)
    assert saved_tensor_bytes(lambda: (y[:5] * y[5:]).sum()) == 400
    # nothing saved without gradients
    with torch.no_grad():
        assert saved_tensor_bytes(lambda: x.exp()) == 0


def test_saved_tensor_bytes_counts_a_sparse_tensor_by_its_values():
    i = torch.tensor([[0, 1], [1, 0]])
    s = torch.sparse_coo_tensor(i, torch.ones(2), (2, 2),
                                check_invariants=True).coalesce()
    dense = torch.randn(2, 3, requires_grad=True)
    out = saved_tensor_bytes(lambda: torch.sparse.mm(s, dense).sum(),
                             exclude=[dense])
    assert out == 2 * 4  # the sparse matrix's two float values


def test_saved_tensor_bytes_frees_the_graph_and_keeps_gradients():
    import gc
    import weakref
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(16, 8, requires_grad=True)
    outputs = []

    def forward():
        y = torch.relu(lin(x))  # relu saves its output
        outputs.append(weakref.ref(y))
        return (y ** 2).sum()

    assert saved_tensor_bytes(forward, exclude=[x, *lin.parameters()]) > 0
    gc.collect()
    assert outputs[0]() is None  # no reference cycle keeps the graph
    grads = []
    saved_tensor_bytes(lambda: grads.append(torch.autograd.grad(
        forward(), x)[0]))
    ref = torch.autograd.grad((torch.relu(lin(x)) ** 2).sum(), x)[0]
    assert torch.equal(grads[0], ref)
