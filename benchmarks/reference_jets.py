"""The reference code trained on the jets for a CPU budget, then scored.

Two steps, two environments:

``train`` runs with the harness's own ``jets-venv`` (made by
``../shared/research/setup.sh``; uproot 3 and numpy < 2) from anywhere.
It trains the reference's ``IterativeRefiner`` exactly as
``IRModel.training_step`` of its ``partitioning_main.py`` does (matched loss
minus the adjacency soft F1, T=16, B=4, S=2, batch 2048 of one jet size,
Adam 3e-4) on the reference's own loaders of the shared sample, until the
process CPU time spent training reaches ``--cpu-minutes``. After every epoch
it computes the validation loss (the reference's checkpoint monitor,
``loss/val``, batch-size weighted) and keeps the best weights. It then
predicts the test split as the reference's
``partitioning_eval._predict_on_test_set`` does (argmax over the slots) for the
best and the last weights and writes the predictions, the true vertex
labels and the flavours to a JSON file::

    RPH_JETS_DIR=../shared/data/jets HARNESS/jets-venv/bin/python \\
        benchmarks/reference_jets.py train HARNESS --cpu-minutes 60 \\
        --seed 0 --threads 1 --dump runs/reference_jets_s0.json

``score`` runs with the package and scores such dumps with the package's
partition metrics (F1 / RI / ARI per jet, mean per flavour and over all
jets; the same definitions as the reference's ``partitioning_eval``),
writing ``<out>/reference_jets.json`` with rows like ``jets.py``'s (model
``'reference'``)::

    python benchmarks/reference_jets.py score runs/reference_jets_s*.json \\
        --out benchmarks/results
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time


def train(args):
    harness = osp.abspath(args.harness)
    if not osp.exists(osp.join(harness, 'partitioning_data.py')):
        sys.exit(f'no partitioning_data.py in {args.harness}: run '
                 f'../shared/research/setup.sh GIT_DIR {args.harness} first')
    if 'RPH_JETS_DIR' not in os.environ:
        sys.exit('set RPH_JETS_DIR to the folder of the jets (train/, '
                 'validation/, test/ ROOT files)')
    os.environ['RPH_JETS_DIR'] = osp.abspath(os.environ['RPH_JETS_DIR'])
    sys.path.insert(0, harness)
    import random

    import numpy as np
    import torch
    from numpy.random import default_rng

    import metrics
    import misc
    import partitioning_data
    from hypergraph_refiner import IterativeRefiner

    # the constants of partitioning_main.py
    max_edges, d_feats, d_hid = 10, 10, 128
    n_bptt, t_bptt, t_total, lr, n_ray = 2, 4, 16, 3e-4, 10
    torch.set_num_threads(args.threads)
    rng = default_rng(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    train_dl = partitioning_data.get_data_loader('train', args.batch_size)
    val_dl = partitioning_data.get_data_loader('validation', args.batch_size)
    net = IterativeRefiner(max_edges, d_feats, d_hid, t_total)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad],
                           lr=lr)
    sampler = misc.IntegerPartitionSampler(t_total - t_bptt * n_bptt,
                                           n_bptt, rng)

    def with_exists(target):
        return torch.cat([target, target.bool().any(-1, keepdim=True)
                          .float()], dim=-1)

    def step(batch):
        inputs, _, target = batch
        inputs, target = inputs.float(), with_exists(target.float())
        bs = inputs.size(0)
        opt.zero_grad()
        e_t, v_t, i_t = net.get_initial(inputs)
        for t in sampler():
            preds, e_t, v_t, i_t = net(inputs, e_t, v_t, i_t, t_skip=t,
                                       t_bp=t_bptt)
            preds = torch.cat(preds, dim=0)
            targets = target.repeat(t_bptt, 1, 1)
            loss_inc = metrics.LAP_loss(preds, targets,
                                        n=min(n_ray, bs)).mean(0)
            preds = preds.clamp(0, 1)
            pred_adj = torch.bmm(preds[..., :-1].transpose(1, 2),
                                 preds[..., :-1])
            target_adj = torch.bmm(targets[..., :-1].transpose(1, 2),
                                   targets[..., :-1])
            loss = loss_inc - metrics.f1_score(target_adj, pred_adj,
                                               type='adj').mean(0)
            loss.backward()
            opt.step()
            opt.zero_grad()
            e_t, v_t, i_t = e_t.detach(), v_t.detach(), i_t.detach()
        return float(loss.detach())

    def predict(model, ds):
        """What ``partitioning_eval._predict_on_test_set`` does (that
        module needs pandas and scikit-learn, which the harness lacks): the
        jets grouped by size, 1,024 at a time, each track's slot the argmax
        of its incidence."""
        model.eval()
        sizes = np.array([ds[i][0].shape[0] for i in range(len(ds))])
        out = [None] * len(ds)
        with torch.no_grad():
            for n in np.unique(sizes):
                idx = np.where(sizes == n)[0]
                for i in range(0, len(idx), 1024):
                    chunk = idx[i:i + 1024]
                    x = torch.stack([torch.as_tensor(ds[j][0])
                                     for j in chunk])
                    labels = model(x)[..., :-1].argmax(1)
                    for j, lab in zip(chunk, labels.tolist()):
                        out[j] = lab
        return out

    class Forward(torch.nn.Module):
        """``IRModel.forward``: the last of T iterations, no gradient."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, inputs):
            e_t, v_t, i_t = self.net.get_initial(inputs.float())
            return self.net(inputs.float(), e_t, v_t, i_t,
                            t_skip=t_total - 1, t_bp=1)[0][-1]

    def val_loss():
        net.eval()
        total = sets = 0
        with torch.no_grad():
            for inputs, _, target in val_dl:
                target = with_exists(target.float())
                pred = Forward(net)(inputs)
                loss = metrics.LAP_loss(pred, target, n=min(
                    n_ray, inputs.size(0))).mean(0)
                total += float(loss) * inputs.size(0)
                sets += inputs.size(0)
        net.train()
        return total / sets

    cpu = batches = epoch = 0
    best, best_state, curve = float('inf'), None, []
    wall0 = time.perf_counter()
    net.train()
    while cpu < args.cpu_minutes * 60:
        epoch += 1
        c0 = time.process_time()
        for batch in train_dl:
            step(batch)
            batches += 1
            if cpu + time.process_time() - c0 >= args.cpu_minutes * 60:
                break
        cpu += time.process_time() - c0
        loss = val_loss()
        curve.append({'epoch': epoch, 'batches': batches,
                      'cpu_minutes': cpu / 60, 'val_loss': loss})
        if loss < best:
            best, best_state = loss, copy.deepcopy(net.state_dict())
            curve[-1]['best'] = True
        print(f'epoch {epoch}: {batches} batches, {cpu / 60:.2f} CPU-min, '
              f'val loss {loss:.4f}', flush=True)
    wall = time.perf_counter() - wall0

    test_ds = partitioning_data.JetGraphDataset('test',
                                                random_permutation=False)
    import uproot3
    with uproot3.open(test_ds.filename) as f:
        tree = f['tree']
        target = [list(map(int, x)) for x in tree.array(b'trk_vtx_index')]
        flavour = [int(x) for x in tree.array(b'jet_flav')]
    preds = {}
    last_state = copy.deepcopy(net.state_dict())
    for which, state in (('best', best_state), ('last', last_state)):
        net.load_state_dict(state)
        preds[which] = predict(Forward(net), test_ds)
    out = {'seed': args.seed, 'threads': args.threads,
           'batch_size': args.batch_size, 'cpu_minutes': cpu / 60,
           'budget_cpu_minutes': args.cpu_minutes, 'wall_minutes': wall / 60,
           'batches': batches, 'epochs': epoch, 'curve': curve,
           'best_cpu_minutes': next(c['cpu_minutes'] for c in curve
                                    if c.get('best') and c['val_loss']
                                    == best),
           'pred': preds['best'], 'pred_last': preds['last'],
           'target': target, 'flavour': flavour, 'argv': sys.argv[1:]}
    os.makedirs(osp.dirname(osp.abspath(args.dump)), exist_ok=True)
    with open(args.dump, 'w') as f:
        json.dump(out, f)
    print(f'wrote {args.dump}: {batches} batches in {epoch} epochs, '
          f'{cpu / 60:.2f} CPU-min, {wall / 60:.2f} wall-min', flush=True)


def scores(pred, target, flavour):
    """Mean F1 / RI / ARI per flavour and over all jets of per-jet label
    lists."""
    import torch
    from torch_geometric_hyper.metrics import PartitionMetrics
    if not (len(pred) == len(target) == len(flavour)):
        raise ValueError(f'{len(pred)} predictions for {len(target)} jets')
    sizes = [len(t) for t in target]
    if [len(p) for p in pred] != sizes:
        raise ValueError('a prediction has another number of tracks than '
                         'its jet')
    m = PartitionMetrics()
    m.update(torch.tensor([x for p in pred for x in p]),
             torch.tensor([x for t in target for x in t]),
             torch.repeat_interleave(torch.arange(len(sizes)),
                                     torch.tensor(sizes)),
             torch.tensor(flavour))
    return m.compute()


def score(args):
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    import _common as C
    rows, curves, argvs = [], [], []
    for path in args.dumps:
        with open(path) as f:
            d = json.load(f)
        best, last = (scores(d[k], d['target'], d['flavour'])
                      for k in ('pred', 'pred_last'))
        for flav in ('bottom', 'charm', 'light', 'all'):
            if flav not in best:
                continue
            rows.append({'model': 'reference', 'seed': d['seed'],
                         'flavour': flav, 'n': best[flav]['n'],
                         **{k: best[flav][k] for k in ('f1', 'ri', 'ari')},
                         'cpu_minutes': d['cpu_minutes'],
                         'best_cpu_minutes': d['best_cpu_minutes'],
                         'batches': d['batches'], 'epochs': d['epochs'],
                         'wall_minutes': d['wall_minutes'],
                         'threads': d['threads'],
                         **{f'{k}_last': last[flav][k]
                            for k in ('f1', 'ri', 'ari')}})
        curves += [{'seed': d['seed'], **c} for c in d['curve']]
        argvs.append(d['argv'])
    columns = [('model', 'model', ''), ('seed', 'seed', ''),
               ('flavour', 'flavour', ''), ('n', 'n', 'd'),
               ('f1', 'F1', '.4f'), ('ri', 'RI', '.4f'),
               ('ari', 'ARI', '.4f'), ('cpu_minutes', 'CPU-min', '.2f'),
               ('best_cpu_minutes', 'best at', '.2f'),
               ('batches', 'batches', ''), ('ari_last', 'ARI last', '.4f')]
    args.threads = rows[0]['threads'] if rows else None
    args._bench_name, args.quick = 'reference_jets', False
    return C.finish(args, rows, columns, lambda _: None,
                    title='Reference code on the jets, test split, best '
                          'validation-loss checkpoint (its own selection)',
                    extra_meta={'curves': curves, 'train_argv': argvs})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('train', help="train the reference (harness's "
                                     "jets-venv)")
    t.add_argument('harness', help='the folder setup.sh made')
    t.add_argument('--cpu-minutes', type=float, default=60.0)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--threads', type=int, default=1)
    t.add_argument('--batch-size', type=int, default=2048)
    t.add_argument('--dump', required=True, help='JSON file to write')
    s = sub.add_parser('score', help='score dumps with the package')
    s.add_argument('dumps', nargs='+')
    s.add_argument('--out', default=osp.join('runs', 'benchmarks'))
    s.add_argument('--name', default=None)
    args = p.parse_args(argv)
    return train(args) if args.cmd == 'train' else score(args)


if __name__ == '__main__':
    main()
