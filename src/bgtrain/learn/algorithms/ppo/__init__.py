"""PPO with V-trace (algorithm ``ppo-vtrace``): actor-critic from whole episodes,
off-policy corrected. Imports torch.

Episodes may have been played by a policy a few versions old. Each recorded step carries
the behaviour log-probability ``logp`` (seed files without it are taken as on-policy):

* value targets and advantages are V-trace with lambda: each TD error is weighted by the
  truncated importance weight ``min(rho_bar, pi/mu)`` and the traces are cut by
  ``lambda * min(1, pi/mu)``; on-policy (``pi == mu``) this is exactly GAE(lambda);
* the policy loss is PPO's clipped surrogate in the decoupled form (Hilton et al. 2021,
  "Batch size-invariance for policy optimization"): each sample is weighted by the
  importance weight of the *proximal* policy (the policy as it was when this batch
  arrived) to the behaviour policy, truncated at ``rho_bar`` as V-trace truncates it, and
  the ratio is clipped against the proximal policy. So a batch from a much older policy
  moves the policy by a bounded amount, while batches that keep coming from one old
  policy (a slow game) still make progress: clipping against the behaviour policy itself
  would freeze learning once the policy moved ``clip_range`` away from it;
* episodes of earlier batches may be trained again beside a new one (``replay``): sample
  reuse as in Generalized PPO (GePPO, Queeney et al., NeurIPS 2021), corrected exactly
  as above; they count in the advantages' centring and scale but not a second time in
  the observation statistics;
* entropy bonus, Adam, gradient-norm clipping, advantages normalised over the batch,
  several epochs of shuffled minibatches; a cut-short episode bootstraps from the value
  of its ``last_state``; observations are normalised with running statistics that are
  saved into the model, so the numpy :class:`~bgtrain.game.policy.Policy` sees the same inputs.
"""

from bgtrain.learn.algorithms.ppo.algorithm import PPOVTrace
from bgtrain.learn.algorithms.ppo.vtrace import vtrace

__all__ = ["PPOVTrace", "vtrace"]
